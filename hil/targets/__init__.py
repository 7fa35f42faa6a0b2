"""Targets: where firmware runs (native process, QEMU, Renode, a real board over serial)."""
