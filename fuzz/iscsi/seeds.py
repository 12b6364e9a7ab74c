#!/usr/bin/env python3
"""Seeds for fuzz/iscsi/main.swift: whole sessions in its record format, written from RFC 7143
(login with and without CHAP, operational negotiation, discovery, text, NOP, SCSI commands,
task management, logout), plus raw encoded PDUs. Usage: seeds.py DIR"""
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

INITIATOR = 'iqn.1993-08.org.debian:01:fuzz'
TARGET = 'iqn.2026-11.io.vmediafs:g1'


def rec(kind, payload):
    return bytes([kind]) + struct.pack('>H', len(payload)) + bytes(payload)


def text(*pairs):
    return b''.join(f'{k}={v}'.encode() + b'\0' for k, v in pairs)


def login(flags, *pairs):
    return rec(1, bytes([flags]) + text(*pairs))


def pdu(opcode, flags, fields=None, data=b'', fix=True):
    """A BHS from opcode, flags and {offset: bytes}, then data (record kind 3, or 4 unfixed)."""
    bhs = bytearray(48)
    bhs[0], bhs[1] = opcode, flags
    for offset, value in (fields or {}).items():
        bhs[offset:offset + len(value)] = value
    return rec(3 if fix else 4, bytes(bhs) + data)


def scsi(cdb, expected=0, read=True, itt=7):
    cdb = bytes(cdb) + bytes(16 - len(cdb))
    return pdu(0x01, 0x80 | (0x40 if read else 0), {16: struct.pack('>I', itt), 20: struct.pack('>I', expected), 32: cdb})


NAMES = [('InitiatorName', INITIATOR), ('TargetName', TARGET), ('SessionType', 'Normal')]
OPERATIONAL = [('HeaderDigest', 'None'), ('DataDigest', 'None'), ('MaxRecvDataSegmentLength', '262144'),
               ('MaxBurstLength', '262144'), ('FirstBurstLength', '65536'), ('ImmediateData', 'Yes'),
               ('InitialR2T', 'Yes'), ('MaxConnections', '1'), ('ErrorRecoveryLevel', '0'),
               ('DefaultTime2Wait', '2'), ('DefaultTime2Retain', '0'), ('MaxOutstandingR2T', '1'),
               ('DataPDUInOrder', 'Yes'), ('DataSequenceInOrder', 'Yes'), ('IFMarker', 'No'), ('OFMarker', 'No'),
               ('X-com.example.Unknown', 'whatever')]
DIGESTS = [('HeaderDigest', 'CRC32C,None'), ('DataDigest', 'CRC32C,None')]
SECURITY_TO_OPERATIONAL = 0x81   # T, CSG=0, NSG=1
OPERATIONAL_TO_FULL = 0x87       # T, CSG=1, NSG=3
SECURITY_TO_FULL = 0x83          # T, CSG=0, NSG=3

# SCSI commands last: the harness's thread pool is never started, so the first command that
# reaches the queue closes the connection (the commands themselves run through SCSIDispatch).
full_feature = [
    rec(5, text(('SendTargets', 'All'))),
    rec(6, b'\0ping data'),
    pdu(0x02 | 0x40, 0x80 | 0x05, {16: struct.pack('>I', 99), 20: struct.pack('>I', 0xFFFFFFFF)}),  # LUN RESET
    pdu(0x02 | 0x40, 0x80 | 0x01, {16: struct.pack('>I', 98), 20: struct.pack('>I', 7)}),           # ABORT TASK
    pdu(0x05, 0x80, {16: struct.pack('>I', 7), 20: struct.pack('>I', 0xFFFFFFFF)}, b'\0' * 8),       # stray Data-Out
    pdu(0x10, 0x00),                                                                                  # SNACK
    pdu(0x1C, 0x80),                                                                                  # unknown opcode
    rec(8, b'\x1f'),                                                                                   # 31 s pass: ping
    rec(6, b'\0'),
    scsi([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], 2048, read=False),                                        # WRITE: R2T
    pdu(0x05, 0x80, {16: struct.pack('>I', 7), 20: struct.pack('>I', 1)}, b'\0' * 512),
    scsi([0x12, 0, 0, 0, 96, 0], 96),
    scsi([0x00] * 6, 0, read=False),
    scsi([0x25] + [0] * 9, 8),
    scsi([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 2048),
    scsi([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], 16),
]
logout = [rec(6, b'\x01\x00')]


sessions = {
    'open-normal': (0x00, [login(SECURITY_TO_OPERATIONAL, *NAMES, ('AuthMethod', 'None')),
                           login(OPERATIONAL_TO_FULL, *OPERATIONAL)] + full_feature),
    'open-direct-to-full': (0x00, [login(OPERATIONAL_TO_FULL, *NAMES, *OPERATIONAL)] + full_feature),
    'open-digests': (0x00, [login(SECURITY_TO_OPERATIONAL, *NAMES, ('AuthMethod', 'CHAP,None')),
                            login(OPERATIONAL_TO_FULL, *DIGESTS, ('MaxRecvDataSegmentLength', '512'))] + full_feature),
    'chap': (0x01, [login(0x00, *NAMES, ('AuthMethod', 'CHAP,None')),
                    login(0x00, ('CHAP_A', '5')),
                    rec(2, bytes([SECURITY_TO_OPERATIONAL, 0])),
                    login(OPERATIONAL_TO_FULL, *DIGESTS)] + full_feature),
    'chap-bad-response': (0x01, [login(0x00, *NAMES, ('AuthMethod', 'CHAP')),
                                 login(0x00, ('CHAP_A', '7,5')),
                                 rec(2, bytes([SECURITY_TO_FULL, 1]))]),
    'chap-split-text': (0x09, [login(0x40, *NAMES[:1]), login(0x00, *NAMES[1:], ('AuthMethod', 'CHAP')),
                               login(0x00, ('CHAP_A', '5')), rec(2, bytes([SECURITY_TO_FULL, 0]))] + full_feature),
    'discovery': (0x00, [login(OPERATIONAL_TO_FULL, ('InitiatorName', INITIATOR), ('SessionType', 'Discovery'),
                               ('MaxRecvDataSegmentLength', '512')),
                         rec(5, text(('SendTargets', 'All'))), rec(5, text(('SendTargets', TARGET))),
                         rec(5, text(('MaxRecvDataSegmentLength', '4096'), ('X-Unknown', 'y'))), rec(6, b'\x01\x00')]),
    'logout': (0x00, [login(OPERATIONAL_TO_FULL, *NAMES), rec(5, text(('SendTargets', 'All'))), rec(6, b'\x01\x00')]),
    'refused': (0x00, [login(SECURITY_TO_OPERATIONAL, ('InitiatorName', 'eui.0123456789abcdef'), ('TargetName', TARGET))]),
    'timeout': (0x00, [login(0x00, *NAMES), rec(8, b'\x28'), rec(8, b'\x28')]),
}


def encoded_login():
    """A Login Request as bytes on the wire (record kind 0): BHS, text, padding."""
    data = text(*NAMES, ('AuthMethod', 'None'))
    bhs = bytearray(48)
    bhs[0], bhs[1] = 0x43, 0x87
    bhs[5:8] = struct.pack('>I', len(data))[1:]
    bhs[8:14] = bytes([0x80, 0, 0, 0x12, 0x34, 0x56])
    bhs[24:28] = struct.pack('>I', 1)
    return bytes(bhs) + data + bytes((4 - len(data) % 4) % 4)


sessions['raw-login'] = (0x00, [rec(0, encoded_login()), rec(7, b'\x02' + encoded_login())])
sessions['raw-login-digest-check'] = (0x06, [rec(0, encoded_login() + encoded_login())])

for name, (config, records) in sessions.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(bytes([config]) + b''.join(records))
print(f'seed iscsi/*: {len(sessions)} files')
