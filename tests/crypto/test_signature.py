"""Twins of geth's crypto/signature_test.go, on both crypto backends (geth runs
the same file against its cgo and nocgo builds)."""

import pytest

from p2p import crypto

TESTMSG = bytes.fromhex("ce0677bb30baa8cf067c88db9811f4333d131bf8bcf12fe7065d211dce971008")
TESTSIG = bytes.fromhex(
    "90f27b8b488db00b00606796d2987f6a5f59ae62ea05effe84fef5b8b0e54998"
    "4a691139ad57a3f0b906637673aa2f63d1f55cb1a69199d4009eea23ceaddc9301"
)
TESTPUBKEY = bytes.fromhex(
    "04e32df42865e97135acfb65f3bae71bdc86f4d49150ad6a440b6f15878109880a"
    "0a2b2667f7e725ceea70c673093bf67663e0312623c8e091b13cf2c0f11ef652"
)
TESTPUBKEYC = bytes.fromhex("02e32df42865e97135acfb65f3bae71bdc86f4d49150ad6a440b6f15878109880a")


def test_ecrecover(crypto_backend):
    assert crypto.ecrecover(TESTMSG, TESTSIG) == TESTPUBKEY


def test_verify_signature(crypto_backend):
    sig = TESTSIG[:-1]  # drop the recovery id
    assert crypto.verify_signature(TESTPUBKEY, TESTMSG, sig), "uncompressed key"
    assert crypto.verify_signature(TESTPUBKEYC, TESTMSG, sig), "compressed key"

    assert not crypto.verify_signature(b"", TESTMSG, sig), "no key"
    assert not crypto.verify_signature(None, TESTMSG, sig), "None key"
    assert not crypto.verify_signature(TESTPUBKEY, b"", sig), "no message"
    assert not crypto.verify_signature(TESTPUBKEY, None, sig), "None message"
    assert not crypto.verify_signature(TESTPUBKEY, TESTMSG, b""), "empty signature"
    assert not crypto.verify_signature(TESTPUBKEY, TESTMSG, None), "None signature"
    assert not crypto.verify_signature(TESTPUBKEY, TESTMSG, sig + bytes([1, 2, 3])), "extra bytes"
    assert not crypto.verify_signature(TESTPUBKEY, TESTMSG, sig[:-2]), "incomplete"
    wrongkey = bytearray(TESTPUBKEY)
    wrongkey[10] += 1
    assert not crypto.verify_signature(bytes(wrongkey), TESTMSG, sig), "wrong public key"


def test_verify_signature_malleable(crypto_backend):
    sig = bytes.fromhex(
        "638a54215d80a6713c8d523a6adc4e6e73652d859103a36b700851cb0e61b66b"
        "8ebfc1a610c57d732ec6e0a8f06a9a7a28df5051ece514702ff9cdff0b11f454"
    )
    key = bytes.fromhex("03ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138")
    msg = bytes.fromhex("d301ce462d3e639518f482c7f03821fec1e602018630ce621e1e7851c12343a6")
    assert not crypto.verify_signature(key, msg, sig)


def test_decompress_pubkey(crypto_backend):
    key = crypto.decompress_pubkey(TESTPUBKEYC)
    assert crypto.from_ecdsa_pub(key) == TESTPUBKEY
    with pytest.raises(crypto.CryptoError):
        crypto.decompress_pubkey(b"")
    with pytest.raises(crypto.CryptoError):
        crypto.decompress_pubkey(None)
    with pytest.raises(crypto.CryptoError):
        crypto.decompress_pubkey(TESTPUBKEYC[:5])
    with pytest.raises(crypto.CryptoError):
        crypto.decompress_pubkey(TESTPUBKEYC + bytes([1, 2, 3]))


def test_compress_pubkey(crypto_backend):
    x = 0xE32DF42865E97135ACFB65F3BAE71BDC86F4D49150AD6A440B6F15878109880A
    y = 0x0A2B2667F7E725CEEA70C673093BF67663E0312623C8E091B13CF2C0F11EF652
    key = crypto.PublicKey(x.to_bytes(32, "big") + y.to_bytes(32, "big"))
    assert crypto.compress_pubkey(key) == TESTPUBKEYC


def test_pubkey_random(crypto_backend):
    # geth does 200 runs; the pure-Python backend makes keys ~100x slower.
    runs = 200 if crypto_backend == "coincurve" else 40
    for i in range(runs):
        key = crypto.generate_key()
        pubkey2 = crypto.decompress_pubkey(crypto.compress_pubkey(key.public_key))
        assert key.public_key == pubkey2, "iteration %d: keys not equal" % i


# BenchmarkEcrecoverSignature, BenchmarkVerifySignature and
# BenchmarkDecompressPubkey have no unit-test twins: speed lives in bench/.


# ---------------------------------------------------------------------------
# More


def test_verify_rejects_high_s(crypto_backend):
    """The high-S twin of a valid signature verifies in plain ECDSA but not here."""
    sig = TESTSIG[:64]
    s = int.from_bytes(sig[32:], "big")
    high = sig[:32] + (crypto.SECP256K1_N - s).to_bytes(32, "big")
    assert not crypto.verify_signature(TESTPUBKEY, TESTMSG, high)


def test_ecrecover_with_flipped_recovery_id(crypto_backend):
    """The other recovery id gives a different (or no) key, never the signer's."""
    flipped = TESTSIG[:64] + bytes([TESTSIG[64] ^ 1])
    try:
        assert crypto.ecrecover(TESTMSG, flipped) != TESTPUBKEY
    except crypto.CryptoError:
        pass


def test_sign_verify_recover_round_trip(crypto_backend):
    key = crypto.generate_key()
    pub65 = crypto.from_ecdsa_pub(key.public_key)
    for i in range(5):
        msg = crypto.keccak256(b"round", bytes([i]))
        sig = crypto.sign(msg, key)
        assert crypto.ecrecover(msg, sig) == pub65
        assert crypto.verify_signature(pub65, msg, sig[:64])
        other = crypto.keccak256(b"other", bytes([i]))
        assert not crypto.verify_signature(pub65, other, sig[:64])
        assert crypto.ecrecover(other, sig) != pub65
