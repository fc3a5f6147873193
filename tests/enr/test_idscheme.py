"""Twin of geth's p2p/enr/idscheme_test.go."""

import pytest

from p2p import crypto
from p2p.enr import Record, sign_v4


def test_sign_error(crypto_backend):
    # A private key of zero cannot sign: the record must stay as it was.
    pub = crypto.hex_to_ecdsa("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291").public_key
    invalid_key = crypto.PrivateKey(b"\x00" * 32, pub)
    r = Record()
    with pytest.raises(Exception):
        sign_v4(r, invalid_key)
    assert r.pairs == []
