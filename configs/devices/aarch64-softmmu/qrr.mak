# qrr: the AArch64 board and devices that record/replay is built and tested
# for.  Keeping the device set small keeps a cold build inside CI's budget.
CONFIG_PCI_DEVICES=n
CONFIG_ARM_VIRT=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_MMIO=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_RNG=y
CONFIG_E1000_PCI=y
# What users commonly add on a command line (issue 20): USB (qemu-xhci with
# usb-kbd, usb-tablet, usb-storage), virtio-input and virtio-scsi (pci and
# mmio), scsi-hd, nvme, and usb-audio (audiodev none/wav need no library;
# usb-audio rather than virtio-sound: Debian 12's arm64 kernel has no
# virtio-snd driver, so the test guest could not drive it).
CONFIG_USB_XHCI_PCI=y
CONFIG_USB_HID=y
CONFIG_USB_STORAGE_CLASSIC=y
CONFIG_VIRTIO_INPUT=y
CONFIG_VIRTIO_SCSI=y
CONFIG_NVME_PCI=y
CONFIG_USB_AUDIO=y
