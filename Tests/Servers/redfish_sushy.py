#!/usr/bin/env python3
"""Drives vmediafs's Redfish service with the sushy library (OpenStack Ironic's Redfish
client), as Ironic's virtual media boot does: log in with a session, find the system's
virtual CD through the manager and through the system, insert an image, read the
properties back, eject. Exits non-zero (with the assertion) on any difference.
Usage: redfish_sushy.py BASE_URL USER PASSWORD SYSTEM DRIVE IMAGE"""
import sys
import sushy

base, user, password, system_id, drive, image = sys.argv[1:7]
root = sushy.Sushy(base + "/redfish/v1", verify=False,
                   auth=sushy.auth.SessionAuth(username=user, password=password))
system = root.get_system("/redfish/v1/Systems/" + system_id)
assert system.identity == system_id, system.identity

manager = root.get_manager("/redfish/v1/Managers/vmediafs")
media = manager.virtual_media.get_member("/redfish/v1/Managers/vmediafs/VirtualMedia/" + drive)
assert media.identity == drive
assert sushy.VirtualMediaType.CD in media.media_types, media.media_types
assert media.write_protected is True

media.insert_media(image, inserted=True, write_protected=True)
media.refresh()
assert media.inserted is True, media.inserted
assert media.image == image, (media.image, image)
assert media.image_name == image.rsplit("/", 1)[-1], media.image_name

through_system = system.virtual_media.get_member("/redfish/v1/Systems/%s/VirtualMedia/%s" % (system_id, drive))
assert through_system.image == image and through_system.inserted is True

media.eject_media()
media.refresh()
assert media.inserted is False and media.image is None, (media.inserted, media.image)
print("sushy: ok")
