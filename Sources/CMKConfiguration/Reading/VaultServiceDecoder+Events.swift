import Foundation
import Yams

extension VaultServiceDecoder {
    static let eventsKeys = ["subscriptions"]
    static let subscriptionKeys = ["name", "endpoint", "secret-file", "secret-credential", "types", "ca-file"]

    /// `events.subscriptions[]`: name, endpoint (https, or http to loopback only), the delivery
    /// secret (a 0600 file or a systemd credential, exactly one), optional types and ca-file.
    func decodeEvents(_ node: Node, base: String) throws(ConfigurationError) -> VaultServiceConfiguration.Events {
        let section = try reader.mapping(node, at: "events", keys: Self.eventsKeys)
        guard let list = section["subscriptions"] else {
            throw reader.error(.missingKey, "events.subscriptions", "is required: a list of subscriptions with name, endpoint and secret-file or secret-credential", at: nil)
        }
        var subscriptions: [VaultServiceConfiguration.Events.Subscription] = []
        for (index, item) in try reader.sequence(list, at: "events.subscriptions", expected: "subscriptions").enumerated() {
            let path = "events.subscriptions[\(index)]"
            let entry = try reader.mapping(item, at: path, keys: Self.subscriptionKeys,
                                           secretHint: "put the delivery secret in a systemd credential (secret-credential) or a 0600 file (secret-file) and name that instead")
            guard let nameNode = entry["name"] else { throw reader.error(.missingKey, "\(path).name", "is required: a name for the journal", at: item) }
            let name = try reader.string(nameNode, at: "\(path).name", expected: "a name")
            guard (1...64).contains(name.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
                throw reader.error(.invalidValue, "\(path).name", "\(Excerpt.quoted(name)) is not a name (accepted: 1-64 of A-Z, a-z, 0-9, '-', '_', '.')", at: nameNode)
            }
            guard !subscriptions.contains(where: { $0.name == name }) else {
                throw reader.error(.invalidValue, "\(path).name", "\(Excerpt.quoted(name)) names two subscriptions: give each its own name", at: nameNode)
            }
            guard let endpointNode = entry["endpoint"] else {
                throw reader.error(.missingKey, "\(path).endpoint", "is required: the receiver's URL (https, or http to a loopback address)", at: item)
            }
            let endpoint = try decodeEndpoint(endpointNode, at: "\(path).endpoint")
            let secret: EventSecretSource
            switch try source(entry, "secret", base: base, what: "the delivery secret (sent as Authorization: Bearer)", in: path) {
            case .file(let file): secret = .file(file)
            case .credential(let credential): secret = .credential(credential)
            }
            var subscription = VaultServiceConfiguration.Events.Subscription(name: name, endpoint: endpoint, secret: secret)
            if let typesNode = entry["types"] {
                var types: [String] = []
                for (typeIndex, typeNode) in try reader.sequence(typesNode, at: "\(path).types", expected: "event types").enumerated() {
                    types.append(try reader.choice(typeNode, at: "\(path).types[\(typeIndex)]", noun: "a key event type", accepted: KeyEventTypes.all))
                }
                guard !types.isEmpty else {
                    throw reader.error(.invalidValue, "\(path).types", "is empty: list at least one type, or leave types out for all", at: typesNode)
                }
                subscription.types = types
            }
            if let caNode = entry["ca-file"] {
                guard endpoint.hasPrefix("https:") else {
                    throw reader.error(.invalidValue, "\(path).ca-file", "is for an https endpoint; \(Excerpt.quoted(endpoint)) is http", at: caNode)
                }
                subscription.caFile = try reader.path(caNode, at: "\(path).ca-file", base: base)
            }
            subscriptions.append(subscription)
        }
        return VaultServiceConfiguration.Events(subscriptions: subscriptions)
    }

    /// An https URL, or an http one whose host is a loopback address (the secret must not cross a network in clear).
    private func decodeEndpoint(_ node: Node, at path: String) throws(ConfigurationError) -> String {
        let text = try reader.string(node, at: path, expected: "a URL")
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty,
              url.user == nil, url.password == nil, url.fragment == nil
        else {
            throw reader.error(.invalidValue, path, "\(Excerpt.quoted(text)) is not a URL (accepted: https://HOST[:PORT]/PATH, or http://127.0.0.1:PORT/PATH)", at: node)
        }
        let loopback = host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw reader.error(.invalidValue, path, "\(Excerpt.quoted(text)) is neither https nor http to a loopback address: the delivery secret must not cross a network in clear", at: node)
        }
        return text
    }
}
