import Foundation

/// A reader of the keyring JSON as cmk-syncer writes it (docs/storage.md "Keyring encoding"), for
/// the cold start: decoding a keyring through Foundation's `JSONDecoder` is about a tenth of the
/// first pass over 10,000 SQLite accounts.
///
/// It never refuses anything: it returns the keyring only for JSON inside a narrow form whose
/// meaning under `JSONDecoder` is certain, and nil for everything else, which
/// ``KeyringJSON/decode(_:account:source:)`` then hands to `JSONDecoder` as before. So it accepts
/// and refuses exactly what `JSONDecoder` does (`KeyringJSONReaderTests` compares the two on the
/// keyrings the drivers write, the fuzz corpus and mutations of both). The form:
/// - one object, JSON whitespace around tokens, nothing after it;
/// - the members of `Keyring`, `WrappedDEK` and `Suspension`, each once, every required one
///   present, no other member, no `null`;
/// - strings of printable ASCII (0x20–0x7E) whose only escape is `\/`;
/// - `generation` as digits without a leading zero that fit `UInt64`; dates as
///   `-?digits(.digits)?` of at most 40 characters (no exponent);
/// - values the types' own initialisers accept (`KeyReference`, `DEKID`, `WrapAlgorithm`,
///   `Suspension.Reason`, `Data(base64Encoded:)`), called as their `Decodable` forms call them.
public enum KeyringJSONReader {
    /// The keyring, or nil when `data` is outside the form above (then ask `JSONDecoder`).
    public static func decode(_ data: Data) -> Keyring? {
        data.withUnsafeBytes { raw in
            var reader = Cursor(bytes: raw.bindMemory(to: UInt8.self))
            guard let keyring = reader.keyring() else { return nil }
            reader.skipSpace()
            return reader.atEnd ? keyring : nil
        }
    }

    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// Skips whitespace and takes `byte` if it comes next.
        mutating func take(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string of printable ASCII whose only escape is `\/`.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var start = index
            var escaped: [UInt8]?
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    let tail = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    guard var escaped else { return String(decoding: tail, as: UTF8.self) }
                    escaped.append(contentsOf: tail)
                    return String(decoding: escaped, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "/") else { return nil }
                    escaped = (escaped ?? []) + UnsafeBufferPointer(rebasing: bytes[start..<index]) + [UInt8(ascii: "/")]
                    index += 2
                    start = index
                case 0x20...0x7E:
                    index += 1
                default:
                    return nil
                }
            }
            return nil
        }

        /// Digits without a leading zero that fit `UInt64`.
        mutating func unsigned() -> UInt64? {
            skipSpace()
            let start = index
            var value: UInt64 = 0
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) {
                let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflowSum) = times.addingReportingOverflow(UInt64(bytes[index] - 0x30))
                guard !overflowTimes, !overflowSum else { return nil }
                value = sum
                index += 1
            }
            guard index > start, bytes[start] != 0x30 || index == start + 1, !endsNumberBadly() else { return nil }
            return value
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most 40 characters, as a finite `Double`.
        mutating func double() -> Double? {
            skipSpace()
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            let integer = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > integer, bytes[integer] != 0x30 || index == integer + 1 else { return nil }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                let fraction = index
                while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
                guard index > fraction else { return nil }
            }
            guard index - start <= 40, !endsNumberBadly() else { return nil }
            guard let value = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)),
                  value.isFinite else { return nil }
            return value
        }

        /// Whether the number just read runs on into an exponent, a fraction or another character
        /// that is not a delimiter.
        private func endsNumberBadly() -> Bool {
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"): return false
            default: return true
            }
        }

        /// The members of an object, each name once, through `member`, which returns false to give up.
        mutating func object(_ member: (inout Cursor, String) -> Bool) -> Bool {
            guard take(UInt8(ascii: "{")) else { return false }
            var seen = Set<String>()
            if take(UInt8(ascii: "}")) { return true }
            repeat {
                guard let name = string(), seen.insert(name).inserted, take(UInt8(ascii: ":")), member(&self, name) else { return false }
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}"))
        }

        mutating func keyring() -> Keyring? {
            var account: String?, key: KeyReference?, generation: UInt64?, deks: [WrappedDEK]?, active: DEKID?
            var suspension: Suspension?
            let read = object { cursor, name in
                switch name {
                case "account": account = cursor.string()
                case "key": key = cursor.string().flatMap { try? KeyReference($0) }
                case "generation": generation = cursor.unsigned()
                case "deks": deks = cursor.deks()
                case "activeDEK": active = cursor.string().flatMap { try? DEKID(hex: $0) }
                case "suspension":
                    suspension = cursor.suspension()
                    return suspension != nil
                default: return false
                }
                switch name {
                case "account": return account != nil
                case "key": return key != nil
                case "generation": return generation != nil
                case "deks": return deks != nil
                default: return active != nil
                }
            }
            guard read, let account, let key, let generation, let deks, let active else { return nil }
            return Keyring(account: account, key: key, generation: generation, deks: deks, activeDEK: active, suspension: suspension)
        }

        mutating func deks() -> [WrappedDEK]? {
            guard take(UInt8(ascii: "[")) else { return nil }
            var deks: [WrappedDEK] = []
            if take(UInt8(ascii: "]")) { return deks }
            repeat {
                guard let dek = dek() else { return nil }
                deks.append(dek)
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]")) ? deks : nil
        }

        mutating func dek() -> WrappedDEK? {
            var id: DEKID?, version: String?, algorithm: WrapAlgorithm?, wrapped: Data?, created: Double?, kcv: Data?
            let read = object { cursor, name in
                switch name {
                case "id": id = cursor.string().flatMap { try? DEKID(hex: $0) }; return id != nil
                case "keyVersion": version = cursor.string(); return version != nil
                case "algorithm": algorithm = cursor.string().flatMap(WrapAlgorithm.init(rawValue:)); return algorithm != nil
                case "wrappedKey": wrapped = cursor.string().flatMap { Data(base64Encoded: $0) }; return wrapped != nil
                case "created": created = cursor.double(); return created != nil
                case "kcv": kcv = cursor.string().flatMap { Data(base64Encoded: $0) }; return kcv != nil
                default: return false
                }
            }
            guard read, let id, let version, let algorithm, let wrapped, let created else { return nil }
            return WrappedDEK(id: id, keyVersion: version, algorithm: algorithm, wrappedKey: wrapped,
                              created: Date(timeIntervalSinceReferenceDate: created), kcv: kcv)
        }

        mutating func suspension() -> Suspension? {
            var reason: Suspension.Reason?, since: Double?
            let read = object { cursor, name in
                switch name {
                case "reason": reason = cursor.string().flatMap(Suspension.Reason.init(rawValue:)); return reason != nil
                case "since": since = cursor.double(); return since != nil
                default: return false
                }
            }
            guard read, let reason, let since else { return nil }
            return Suspension(reason: reason, since: Date(timeIntervalSinceReferenceDate: since))
        }
    }
}
