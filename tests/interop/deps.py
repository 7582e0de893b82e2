"""Says whether this Python can run vectors.py and peer.py: exit 0 if so, else 1 with what is missing on stdout.

Needs Python 3.8+, the `cryptography` package (Debian: python3-cryptography) and an Argon2id: `cryptography` 44 or
later, argon2-cffi (Debian: python3-argon2) or the C library libargon2.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def missing():
    if sys.version_info < (3, 8):
        return "Python 3.8 or later (this is %d.%d)" % sys.version_info[:2]
    try:
        import meshproto
    except ImportError as e:
        return "the cryptography package (python3-cryptography): %s" % e
    try:
        meshproto.argon2id(b"password", b"saltsaltsaltsalt", 64, 1, 1)
    except (ImportError, ValueError) as e:
        return "an Argon2id (python3-argon2, or cryptography >= 44): %s" % e
    return None


if __name__ == "__main__":
    why = missing()
    if why:
        print("missing " + why)
        sys.exit(1)
