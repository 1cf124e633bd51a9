import CMKCore
import Foundation
import Testing

/// `KeyringJSONReader` (the cold start's keyring reader) against Foundation's `JSONDecoder`, which
/// it must agree with: whatever it returns, `JSONDecoder` returns the same keyring; whatever it
/// leaves (nil), `KeyringJSON.decode` hands to `JSONDecoder`.
@Suite("Keyring JSON reader")
struct KeyringJSONReaderTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/Corpus/keyring").standardizedFileURL

    /// The fuzz corpus's inputs: the seeds taken from real keyrings of both drivers, and the
    /// inputs fuzzing added (`merged-…`).
    static func corpusFiles() throws -> (written: [String], found: [String]) {
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted()
        return (files.filter { !$0.hasPrefix("merged-") }, files.filter { $0.hasPrefix("merged-") })
    }

    /// The real keyrings of the fuzz corpus and keyrings encoded here with every member.
    static func seeds() throws -> [Data] {
        let files = try corpusFiles().written
        #expect(files.count >= 4, "the keyring corpus at \(corpus.path) is missing")
        var seeds = try files.map { try Data(contentsOf: corpus.appendingPathComponent($0)) }
        let ids = (0..<3).map { _ in DEKID.random() }
        let deks = [
            WrappedDEK(id: ids[0], keyVersion: "v/1", wrappedKey: Data((0..<256).map { UInt8($0 & 0xFF) }), created: Date(timeIntervalSinceReferenceDate: 818177821.5058937),
                       kcv: Data(repeating: 7, count: 16)),
            WrappedDEK(id: ids[1], keyVersion: "v2", algorithm: .aesKeyWrapPad, wrappedKey: Data(repeating: 0xFB, count: 40),
                       created: Date(timeIntervalSinceReferenceDate: -12.25), kcv: Data(repeating: 9, count: 16)),
        ]
        let suspended = Keyring(account: "acct-1", key: try KeyReference("root-Key-9"), generation: 41, deks: deks, activeDEK: ids[1],
                                suspension: Suspension(reason: .keyPulled, since: Date(timeIntervalSinceReferenceDate: 818178207.4942843)))
        let plain = Keyring(account: "a", key: try KeyReference("k"), generation: 1,
                            deks: [WrappedDEK(id: ids[2], keyVersion: "x", wrappedKey: Data([1]), created: Date(timeIntervalSinceReferenceDate: 0))],
                            activeDEK: ids[2])
        seeds.append(try KeyringJSON.encodeChecked(suspended, account: "acct-1", expectedGeneration: 40))
        seeds.append(try KeyringJSON.encodeChecked(plain, account: "a", expectedGeneration: nil))
        seeds.append(try JSONEncoder().encode(suspended))  // compact, unsorted
        return seeds
    }

    /// Checks agreement on `data`; returns whether the reader took it.
    @discardableResult
    static func agree(_ data: Data, _ what: @autoclosure () -> String) -> Bool {
        guard let read = KeyringJSONReader.decode(data) else { return false }
        let foundation = try? JSONDecoder().decode(Keyring.self, from: data)
        #expect(read == foundation, "\(what()): the reader gave \(read), JSONDecoder \(String(describing: foundation)) for \(String(decoding: data, as: UTF8.self))")
        return true
    }

    @Test("every keyring the drivers write is read by the reader, to the same value as JSONDecoder's")
    func writtenKeyrings() throws {
        for (index, seed) in try Self.seeds().enumerated() {
            #expect(Self.agree(seed, "seed \(index)"), "seed \(index) was left to JSONDecoder: \(String(decoding: seed, as: UTF8.self))")
        }
    }

    @Test("every input fuzzing added to the corpus: the reader agrees with JSONDecoder")
    func fuzzCorpus() throws {
        for file in try Self.corpusFiles().found {
            Self.agree(try Data(contentsOf: Self.corpus.appendingPathComponent(file)), file)
        }
    }

    @Test("JSON outside the written form is left to JSONDecoder, never read differently")
    func edgeCases() throws {
        let seed = try String(contentsOf: Self.corpus.appendingPathComponent("sqlite-acct-01912.json"), encoding: .utf8)
        #expect(seed.contains(#""kcv" : "GDLztOlLK25YA9fbXdq1QQ==""#))
        let generation = try #require(seed.range(of: #""generation" : [0-9]+"#, options: .regularExpression))
        let created = try #require(seed.range(of: #""created" : [0-9.]+"#, options: .regularExpression))
        let variants: [(String, String)] = [
            ("leading zero", seed.replacingCharacters(in: generation, with: #""generation" : 01"#)),
            ("fraction in generation", seed.replacingCharacters(in: generation, with: #""generation" : 1.0"#)),
            ("exponent in generation", seed.replacingCharacters(in: generation, with: #""generation" : 1e0"#)),
            ("negative generation", seed.replacingCharacters(in: generation, with: #""generation" : -1"#)),
            ("generation beyond UInt64", seed.replacingCharacters(in: generation, with: #""generation" : 18446744073709551616"#)),
            ("exponent in a date", seed.replacingCharacters(in: created, with: #""created" : 8.1e8"#)),
            ("integer date", seed.replacingCharacters(in: created, with: #""created" : 818177821"#)),
            ("date beyond Double", seed.replacingCharacters(in: created, with: #""created" : 1\#(String(repeating: "0", count: 400))"#)),
            ("unicode escape", seed.replacingOccurrences(of: #""account" : "#, with: #""acc\u006funt" : "#)),
            ("escaped quote", seed.replacingOccurrences(of: #""algorithm" : "RSA-OAEP-256""#, with: #""algorithm" : "RSA-OAEP-256\"""#)),
            ("null kcv", seed.replacingOccurrences(of: #""kcv" : "GDLztOlLK25YA9fbXdq1QQ==""#, with: #""kcv" : null"#)),
            ("unknown member", seed.replacingOccurrences(of: #""generation" : "#, with: #""extra" : [1, {"a": null}], "generation" : "#)),
            ("duplicate member", seed.replacingOccurrences(of: #""generation" : "#, with: #""account" : "other", "generation" : "#)),
            ("byte order mark", "\u{FEFF}" + seed),
            ("trailing garbage", seed + " x"),
            ("two objects", seed + seed),
            ("non-ASCII account", seed.replacingOccurrences(of: #""account" : ""#, with: #""account" : "é"#)),
            ("unpadded base64", seed.replacingOccurrences(of: #""kcv" : "GDLztOlLK25YA9fbXdq1QQ==""#, with: #""kcv" : "GDLztOlLK25YA9fbXdq1QQ""#)),
            ("tab and CR whitespace", seed.replacingOccurrences(of: "\n", with: "\r\n\t")),
            ("no whitespace", seed.filter { $0 != "\n" && $0 != " " }),
        ]
        var read = 0
        for (what, text) in variants {
            if Self.agree(Data(text.utf8), what) { read += 1 }
        }
        // Only the integer date and the two whitespace forms are in the reader's form.
        #expect(read == 3, "\(read) variants were read by the reader")
    }

    @Test("random mutations of the written keyrings: the reader agrees with JSONDecoder")
    func mutations() throws {
        var random = SplitMix64(seed: 0x5EED_C01D)
        let alphabet = Array(#"{}[]:,"\/ 0123456789.-+eEnultrfa=AZaz"#.utf8) + [0x00, 0x0A, 0x7F, 0x80, 0xC3, 0xFF]
        var read = 0, total = 0
        for seed in try Self.seeds() {
            for _ in 0..<1_500 {
                var bytes = [UInt8](seed)
                for _ in 0...Int(random.next() % 3) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    switch random.next() % 4 {
                    case 0: bytes[at] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                    case 1: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: at)
                    case 2: bytes.remove(at: at)
                    default:
                        let end = min(bytes.count, at + 1 + Int(random.next() % 40))
                        bytes.insert(contentsOf: bytes[at..<end], at: Int(random.next() % UInt64(bytes.count)))
                    }
                    if bytes.isEmpty { bytes = [0x7B] }
                }
                total += 1
                if Self.agree(Data(bytes), "mutation \(total)") { read += 1 }
            }
        }
        // Many mutations stay in the reader's form (a changed digit or base64 character).
        #expect(read > total / 10, "only \(read) of \(total) mutations were read by the reader")
    }
}

/// A small deterministic generator (SplitMix64), so that a failure can be replayed.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
