import StratosCore
import Testing

@Suite struct HashTests {
    @Test func blake2bOfEmptyInputMatchesReference() {
        // BLAKE2b-256("") from the BLAKE2 reference implementation.
        #expect(Hash256.blake2b([UInt8]()).hex == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ])
    func sha256MatchesFIPS180Examples(input: String, expected: String) {
        #expect(Hash256.sha256(Array(input.utf8)).hex == expected)
    }

    @Test func hashRejectsWrongLength() {
        #expect(throws: StratosError.self) { try Hash256(bytes: [1, 2, 3]) }
    }

    @Test func hexRoundTripsAndRejectsBadInput() throws {
        let bytes: [UInt8] = [0, 1, 0xab, 0xff]
        #expect(try Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(try Hex.decode("ABff") == [0xab, 0xff])
        #expect(throws: StratosError.self) { try Hex.decode("abc") }
        #expect(throws: StratosError.self) { try Hex.decode("zz") }
    }
}

@Suite struct SigningTests {
    // RFC 8032 §7.1, TEST 1 (empty message).
    @Test func ed25519MatchesRFC8032TestOne() throws {
        let key = try SigningKey(seed: Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
        #expect(Hex.encode(key.publicKey.bytes) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let signature = key.sign([UInt8]())
        #expect(
            Hex.encode(signature.bytes)
                == "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        )
        try key.publicKey.verify(signature, for: [UInt8]())
    }

    @Test func tamperedMessageDoesNotVerify() {
        let key = SigningKey.generate()
        let signature = key.sign(Array("hello".utf8))
        #expect(key.publicKey.isValidSignature(signature, for: Array("hello".utf8)))
        #expect(!key.publicKey.isValidSignature(signature, for: Array("hellO".utf8)))
        #expect(throws: StratosError.self) { try key.publicKey.verify(signature, for: Array("x".utf8)) }
    }

    @Test func descriptionNeverShowsTheSecret() throws {
        let key = try SigningKey(seed: [UInt8](repeating: 7, count: 32))
        #expect(!key.description.contains(Hex.encode([UInt8](repeating: 7, count: 32))))
    }
}

@Suite struct CanonicalEncodingTests {
    @Test func roundTripsEveryFieldKind() throws {
        var encoder = CanonicalEncoder()
        encoder.write(UInt8(7))
        encoder.write(UInt32(0x0102_0304))
        encoder.write(UInt64.max)
        encoder.write(Int64(-2))
        encoder.write(true)
        encoder.write(bytes: [9, 8])
        encoder.write("héllo")
        #expect(Array(encoder.bytes[1...4]) == [1, 2, 3, 4])
        var decoder = CanonicalDecoder(encoder.bytes)
        #expect(try decoder.readUInt8() == 7)
        #expect(try decoder.readUInt32() == 0x0102_0304)
        #expect(try decoder.readUInt64() == UInt64.max)
        #expect(try decoder.readInt64() == -2)
        #expect(try decoder.readBool())
        #expect(try decoder.readBytes() == [9, 8])
        #expect(try decoder.readString() == "héllo")
        try decoder.finish()
    }

    @Test func rejectsTruncatedTrailingAndNonCanonicalInput() throws {
        var truncated = CanonicalDecoder([0, 0, 0, 5, 1])
        #expect(throws: StratosError.self) { try truncated.readBytes() }
        var trailing = CanonicalDecoder([1, 2])
        _ = try trailing.readUInt8()
        #expect(throws: StratosError.self) { try trailing.finish() }
        var badBool = CanonicalDecoder([2])
        #expect(throws: StratosError.self) { try badBool.readBool() }
        var badUTF8 = CanonicalDecoder([0, 0, 0, 1, 0xff])
        #expect(throws: StratosError.self) { try badUTF8.readString() }
    }
}

@Suite struct CRC32CTests {
    /// RFC 3720 §B.4 and the common "123456789" check value.
    @Test func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }
}
