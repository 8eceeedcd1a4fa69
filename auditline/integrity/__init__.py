"""Tamper evidence in one place: hash chains, signatures, keyrings, stream checkpoints and the
verification that reads them all (``chain``, ``signing``, ``keyring``, ``checkpoints``,
``verify``, ``anchors``)."""
