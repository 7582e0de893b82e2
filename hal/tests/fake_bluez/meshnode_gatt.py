'''meshnode's additions to python-dbusmock's bluez5 template, loaded with AddTemplate after it.

What: org.bluez.Mock methods that add a meshnode peer (a device advertising the meshnode service, with a GATT
service and characteristic under it and Connect/Disconnect that resolve services), deliver a notification from
it, drop it, list what was written to it, and give the adapter the LE advertising and GATT manager interfaces
that bluer's peripheral role registers with (recording what was registered, so the test can play bluetoothd).
OfferAcquireWrite gives a peer's characteristic BlueZ's AcquireWrite: each call makes a SOCK_SEQPACKET socket
pair, hands one end to the caller with the given MTU and keeps the other, which TakeMeshnodeWriteSocket then
passes to the test (so the test reads what the central wrote, and closing it is the peer's side going away).

Invariant: every mocked GATT object has at least one method (btleplug's introspection parser needs it), and
every change a client must see is announced with InterfacesAdded or PropertiesChanged.
'''

import socket

import dbus

from dbusmock import mockobject

MOCK = 'org.bluez.Mock'
DEVICE = 'org.bluez.Device1'
SERVICE = 'org.bluez.GattService1'
CHAR = 'org.bluez.GattCharacteristic1'
OM = 'org.freedesktop.DBus.ObjectManager'
PROPS = 'org.freedesktop.DBus.Properties'

STATE = {'writes': {}, 'apps': [], 'advs': [], 'write_sockets': {}}


def load(mock, _parameters):
    pass


def _dev_path(adapter, address):
    return f"/org/bluez/{adapter}/dev_{address.replace(':', '_').upper()}"


def _changed(obj, iface, props):
    for k, v in props.items():
        obj.props[iface][k] = v
    obj.EmitSignal(PROPS, 'PropertiesChanged', 'sa{sv}as', [iface, props, []])


def _connect(device):
    _changed(device, DEVICE, {'Connected': dbus.Boolean(True, variant_level=1),
                              'ServicesResolved': dbus.Boolean(True, variant_level=1)})


def _disconnect(device):
    _changed(device, DEVICE, {'Connected': dbus.Boolean(False, variant_level=1),
                              'ServicesResolved': dbus.Boolean(False, variant_level=1)})


def _write(char, value, _options):
    STATE['writes'].setdefault(char.__dict__['_meshnode_dev'], []).append(bytes(value))


def _read(char, _options):
    return dbus.ByteArray(char.__dict__['_meshnode_id'])


def _noop(_obj, *_args):
    pass


def _acquire_write(char, _options):
    address = char.__dict__['_meshnode_dev']
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old = STATE['write_sockets'].pop(address, None)
    if old is not None:
        old.close()
    STATE['write_sockets'][address] = ours
    fd = dbus.types.UnixFd(theirs)  # a duplicate: the only copy of this end left is the one D-Bus passes on
    theirs.close()
    _changed(char, CHAR, {'WriteAcquired': dbus.Boolean(True, variant_level=1)})
    return (fd, dbus.UInt16(char.__dict__['_meshnode_acquire_mtu']))


@dbus.service.method(MOCK, in_signature='ssssqay', out_signature='s')
def AddMeshnodePeer(self, adapter, address, service_uuid, char_uuid, mtu, node_id):
    path = _dev_path(adapter, address)
    props = {
        'Address': dbus.String(address, variant_level=1),
        'AddressType': dbus.String('random', variant_level=1),
        'Name': dbus.String('meshnode', variant_level=1),
        'Alias': dbus.String('meshnode', variant_level=1),
        'Adapter': dbus.ObjectPath('/org/bluez/' + adapter, variant_level=1),
        'UUIDs': dbus.Array([service_uuid], signature='s', variant_level=1),
        'ServiceData': dbus.Dictionary({service_uuid: dbus.ByteArray(bytes(node_id))}, signature='sv',
                                       variant_level=1),
        'ManufacturerData': dbus.Dictionary({}, signature='qv', variant_level=1),
        'Paired': dbus.Boolean(False, variant_level=1),
        'Trusted': dbus.Boolean(False, variant_level=1),
        'Blocked': dbus.Boolean(False, variant_level=1),
        'LegacyPairing': dbus.Boolean(False, variant_level=1),
        'Connected': dbus.Boolean(False, variant_level=1),
        'ServicesResolved': dbus.Boolean(False, variant_level=1),
        'RSSI': dbus.Int16(-60, variant_level=1),
        'TxPower': dbus.Int16(0, variant_level=1),
    }
    self.AddObject(path, DEVICE, props, [
        ('Connect', '', '', _connect),
        ('Disconnect', '', '', _disconnect),
        ('Pair', '', '', _noop),
    ])
    spath = path + '/service0010'
    sprops = {
        'UUID': dbus.String(service_uuid, variant_level=1),
        'Primary': dbus.Boolean(True, variant_level=1),
        'Device': dbus.ObjectPath(path, variant_level=1),
        'Includes': dbus.Array([], signature='o', variant_level=1),
        'Handle': dbus.UInt16(0x10, variant_level=1),
    }
    self.AddObject(spath, SERVICE, sprops, [('MeshnodeNoop', '', '', _noop)])
    cpath = spath + '/char0011'
    cprops = {
        'UUID': dbus.String(char_uuid, variant_level=1),
        'Service': dbus.ObjectPath(spath, variant_level=1),
        'Value': dbus.ByteArray(b'', variant_level=1),
        'Notifying': dbus.Boolean(False, variant_level=1),
        'Flags': dbus.Array(['read', 'write-without-response', 'write', 'notify'], signature='s',
                            variant_level=1),
        'MTU': dbus.UInt16(mtu, variant_level=1),
        'Handle': dbus.UInt16(0x11, variant_level=1),
    }
    self.AddObject(cpath, CHAR, cprops, [
        ('ReadValue', 'a{sv}', 'ay', _read),
        ('WriteValue', 'aya{sv}', '', _write),
        ('StartNotify', '', '', lambda c: _changed(c, CHAR, {'Notifying': dbus.Boolean(True, variant_level=1)})),
        ('StopNotify', '', '', lambda c: _changed(c, CHAR, {'Notifying': dbus.Boolean(False, variant_level=1)})),
    ])
    char = mockobject.objects[cpath]
    char.__dict__['_meshnode_dev'] = address
    char.__dict__['_meshnode_id'] = bytes(node_id)
    manager = mockobject.objects['/']
    for p, iface, pr in ((path, DEVICE, props), (spath, SERVICE, sprops), (cpath, CHAR, cprops)):
        manager.EmitSignal(OM, 'InterfacesAdded', 'oa{sa{sv}}', [dbus.ObjectPath(p), {iface: pr}])
    return path


@dbus.service.method(MOCK, in_signature='ssay', out_signature='')
def NotifyMeshnode(self, adapter, address, value):
    char = mockobject.objects[_dev_path(adapter, address) + '/service0010/char0011']
    _changed(char, CHAR, {'Value': dbus.ByteArray(bytes(value), variant_level=1)})


@dbus.service.method(MOCK, in_signature='ss', out_signature='')
def DropMeshnodePeer(self, adapter, address):
    _disconnect(mockobject.objects[_dev_path(adapter, address)])


@dbus.service.method(MOCK, in_signature='ssq', out_signature='')
def OfferAcquireWrite(self, adapter, address, mtu):
    char = mockobject.objects[_dev_path(adapter, address) + '/service0010/char0011']
    char.__dict__['_meshnode_acquire_mtu'] = int(mtu)
    char.AddMethods(CHAR, [('AcquireWrite', 'a{sv}', 'hq', _acquire_write)])
    _changed(char, CHAR, {'WriteAcquired': dbus.Boolean(False, variant_level=1)})


@dbus.service.method(MOCK, in_signature='s', out_signature='h')
def TakeMeshnodeWriteSocket(self, address):
    ours = STATE['write_sockets'].pop(address)
    fd = dbus.types.UnixFd(ours)
    ours.close()
    return fd


@dbus.service.method(MOCK, in_signature='s', out_signature='aay')
def MeshnodeWrites(self, address):
    return [dbus.ByteArray(v) for v in STATE['writes'].get(address, [])]


@dbus.service.method(MOCK, in_signature='s', out_signature='')
def AddPeripheralManagers(self, adapter):
    obj = mockobject.objects['/org/bluez/' + adapter]
    obj.AddMethods('org.bluez.LEAdvertisingManager1', [
        ('RegisterAdvertisement', 'oa{sv}', '', _noop),
        ('UnregisterAdvertisement', 'o', '', _noop),
    ])
    obj.AddMethods('org.bluez.GattManager1', [
        ('RegisterApplication', 'oa{sv}', '', _noop),
        ('UnregisterApplication', 'o', '', _noop),
    ])
    obj.AddProperties('org.bluez.LEAdvertisingManager1', {
        'ActiveInstances': dbus.Byte(0, variant_level=1),
        'SupportedInstances': dbus.Byte(5, variant_level=1),
        'SupportedIncludes': dbus.Array([], signature='s', variant_level=1),
    })
