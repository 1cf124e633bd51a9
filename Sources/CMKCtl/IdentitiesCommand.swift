import ArgumentParser
import CMKIdentity
import Foundation

/// `cmkctl identities`: the platform identities of the hosts' cmk-syncers in the vault service.
struct IdentitiesCommand: ParsableCommand, ClientKind {
    static let configuration = CommandConfiguration(
        commandName: "identities",
        abstract: "Add, list or remove the platform identities (one per host's cmk-syncer) of the vault service.",
        discussion: """
            A platform identity lets one host's cmk-syncer get 1-hour tokens from cmk-vault to read key versions \
            and wrap/unwrap, nothing else. Run on the vault host as the vault service's user; the store is \
            <dir>/identity.sqlite (--vault-state).
            """,
        subcommands: [AddClient<IdentitiesCommand>.self, ListClients<IdentitiesCommand>.self, RemoveClient<IdentitiesCommand>.self])

    static let noun = "platform identity"
    static let nameArgument = (valueName: "host", help: "The host's DNS name (RFC 1123: labels of letters, digits and '-'; stored in lower case).")
    static let nameHeader = "HOST"
    static let addDiscussion = "One identity per host; its secret is shown once."
    static let group = "identities"
    static func add(_ name: String, to store: IdentityStore) throws -> NewClient { try store.addPlatformIdentity(host: name) }
    static func list(_ store: IdentityStore) throws -> [Client] { try store.platformIdentities() }
    static func remove(_ clientID: String, from store: IdentityStore) throws { try store.removePlatformIdentity(clientID: clientID) }
}
