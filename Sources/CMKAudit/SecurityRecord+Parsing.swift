import Foundation

extension SecurityRecord {
    /// Why a stored line is not a well-formed record.
    enum ParseFailure: Error, Equatable, CustomStringConvertible {
        case notJSON
        case field(String)
        case unexpectedField(String)
        case notCanonical
        /// `seq` is a number but not an integer in 1 ... 2^63 − 1 (a fraction, an exponent, or too large).
        case seqOutOfRange
        /// A field holds more than `append` accepts (``SecurityLogEntry/validate()``).
        case tooLong(field: String, message: String)

        var description: String {
            switch self {
            case .notJSON: return "not a JSON object"
            case .seqOutOfRange: return "field 'seq' is not an integer from 1 to \(Int.max)"
            case .tooLong(_, let message): return "\(message) (longer than append allows)"
            case .field(let name): return "field '\(name)' is missing or malformed"
            case .unexpectedField(let name): return "unexpected field '\(name)'"
            case .notCanonical: return "not in canonical form"
            }
        }
    }

    /// Parses one stored line (without its newline). The line must be valid JSON with exactly the
    /// record's fields, each of the right type and form, and be byte-for-byte the canonical
    /// encoding; whether ``hash`` matches is checked by the caller.
    static func parse(line: some Collection<UInt8>) throws(ParseFailure) -> SecurityRecord {
        let data = Data(line)
        let stored: StoredRecord
        do {
            stored = try JSONDecoder().decode(StoredRecord.self, from: data)
        } catch let error as ParseFailure {
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw .field(key.stringValue)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw .field(context.codingPath.first?.stringValue ?? "?")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw .field(context.codingPath.first!.stringValue)
        } catch {
            throw .notJSON
        }
        guard stored.seq >= 1 else { throw .seqOutOfRange }
        guard let time = RFC3339.parse(stored.time) else { throw .field("time") }
        guard let event = SecurityEvent(rawValue: stored.event) else { throw .field("event") }
        guard let actor = SecurityActor(stored.actor) else { throw .field("actor") }
        guard isHexDigest(stored.prev) else { throw .field("prev") }
        guard isHexDigest(stored.hash) else { throw .field("hash") }
        let record = SecurityRecord(
            seq: stored.seq, time: time, event: event, account: stored.account, key: stored.key, version: stored.version,
            previousVersion: stored.previousVersion, actor: actor, details: stored.details, prev: stored.prev, hash: stored.hash
        )
        guard record.canonicalBytes(includingHash: true).elementsEqual(line) else { throw .notCanonical }
        if let problem = record.entry.lengthProblem() { throw .tooLong(field: problem.field, message: problem.message) }
        return record
    }

    private static func isHexDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// The stored form, decoded strictly: every field typed, no unknown members.
private struct StoredRecord: Decodable {
    let seq: Int
    let time: String
    let event: String
    let account: String?
    let key: String?
    let version: String?
    let previousVersion: String?
    let actor: String
    let details: [String: String]
    let prev: String
    let hash: String

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case seq, time, event, account, key, version, previousVersion, actor, details, prev, hash
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let all = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = all.allKeys.first(where: { CodingKeys(stringValue: $0.stringValue) == nil }) {
            throw SecurityRecord.ParseFailure.unexpectedField(unknown.stringValue)
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // A number beyond Int (or with a fraction) is the field's fault, not the line's.
        guard (try? container.decode(Double.self, forKey: .seq)) == nil || (try? container.decode(Int.self, forKey: .seq)) != nil else {
            throw SecurityRecord.ParseFailure.seqOutOfRange
        }
        seq = try container.decode(Int.self, forKey: .seq)
        time = try container.decode(String.self, forKey: .time)
        event = try container.decode(String.self, forKey: .event)
        account = try container.decodeIfPresent(String.self, forKey: .account)
        key = try container.decodeIfPresent(String.self, forKey: .key)
        version = try container.decodeIfPresent(String.self, forKey: .version)
        previousVersion = try container.decodeIfPresent(String.self, forKey: .previousVersion)
        actor = try container.decode(String.self, forKey: .actor)
        details = try container.decode([String: String].self, forKey: .details)
        prev = try container.decode(String.self, forKey: .prev)
        hash = try container.decode(String.self, forKey: .hash)
    }
}
