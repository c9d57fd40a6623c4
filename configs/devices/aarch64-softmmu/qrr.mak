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
