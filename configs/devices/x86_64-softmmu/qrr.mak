# qrr: the x86_64 boards and devices that record/replay is built and tested
# for.  Keeping the device set small keeps a cold build inside CI's budget.
CONFIG_PCI_DEVICES=n
CONFIG_I440FX=y
CONFIG_Q35=y
CONFIG_ISAPC=n
CONFIG_MICROVM=n
CONFIG_NITRO_ENCLAVE=n
CONFIG_VGA_PCI=y
CONFIG_IDE_PIIX=y
CONFIG_AHCI_ICH9=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_RNG=y
CONFIG_E1000_PCI=y
CONFIG_E1000E_PCI_EXPRESS=y
CONFIG_RTL8139_PCI=y
CONFIG_SERIAL_ISA=y
CONFIG_ISA_DEBUG=y
# What users commonly add on a command line (issue 20): USB (qemu-xhci with
# usb-kbd, usb-tablet, usb-storage), virtio-input, virtio-scsi with scsi-hd,
# nvme, and intel-hda + hda-duplex (audiodev none/wav need no library).
CONFIG_USB_XHCI_PCI=y
CONFIG_USB_HID=y
CONFIG_USB_STORAGE_CLASSIC=y
CONFIG_VIRTIO_INPUT=y
CONFIG_VIRTIO_SCSI=y
CONFIG_NVME_PCI=y
CONFIG_HDA=y
