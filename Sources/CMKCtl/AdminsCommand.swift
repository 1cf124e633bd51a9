import ArgumentParser
import CMKIdentity
import Foundation

/// `--vault-state`, shared by the commands that open the vault service's identity store.
struct VaultStateOptions: ParsableArguments {
    /// The vault service's state directory when none is given.
    static let defaultDirectory = "/var/lib/cmk-vault"

    @Option(name: .long, help: ArgumentHelp(
        "The vault service's state directory, which holds identity.sqlite (created 0700/0600 if missing).",
        valueName: "dir"))
    var vaultState: String = Self.defaultDirectory

    @Flag(help: "Print one JSON document.") var json = false

    /// Opens the identity store; its errors become cmkctl's (``run(_:)``).
    func open() throws -> IdentityStore { try run { try IdentityStore(stateDirectory: vaultState) } }

    /// Runs `body`, turning an ``IdentityError`` into a ``CtlError``: refused input exits 2, a
    /// store that is not usable (permissions, newer schema) 78, the administrator limit and
    /// store failures 1.
    func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as IdentityError {
            let code: Int32 = error.isInputRefusal ? 2 : error.category == .configuration && error.code != .administratorLimit && error.code != .rotationPending ? 78 : 1
            throw CtlError(error.description, exitCode: code)
        }
    }

    /// Prints a new client with its secret, and the warning that the secret is not shown again.
    func printNewClient(_ client: NewClient, tenant: Tenant, nameLabel: String) throws {
        if json {
            defer { warnSecretShownOnce() }
            return try Output.json(NewClientJSON(clientId: client.clientID, name: client.name, tenantId: tenant.tenantID,
                                                 credentialId: client.credentialID, secret: client.secret.text, created: client.created))
        }
        for (label, value) in [(nameLabel, client.name), ("client id", client.clientID), ("tenant id", tenant.tenantID), ("secret", client.secret.text)] {
            Output.line((label + ":").padding(toLength: 16, withPad: " ", startingAt: 0) + value)
        }
        warnSecretShownOnce()
    }

    func warnSecretShownOnce() {
        Output.warning("the secret is shown only this once and is not stored anywhere (only its hash is); hand it over now over a secure channel")
    }

    /// Prints administrators or platform identities.
    func printClients(_ clients: [Client], nameHeader: String) throws {
        if json { return try Output.json(clients.map(ClientJSON.init)) }
        Output.table(["CLIENT-ID", nameHeader, "CREATED", "SECRET-ISSUED", "LAST-USED"], clients.map {
            [$0.clientID, $0.name, Output.date($0.created), Output.date($0.secretCreated), $0.lastUsed.map { Output.relative($0) } ?? "never"]
        })
    }

    struct NewClientJSON: Encodable {
        var clientId, name, tenantId, credentialId, secret: String
        var created: Date
    }

    struct ClientJSON: Encodable {
        var clientId, name: String
        var created: Date
        var secretIssued, lastUsed: Date?
        init(_ client: Client) {
            clientId = client.clientID
            name = client.name
            created = client.created
            secretIssued = client.secretCreated
            lastUsed = client.lastUsed
        }
    }
}

/// What `cmkctl admins` and `cmkctl identities` differ in: the kind of client, its words and
/// its store calls. Their add, list and remove commands are one generic implementation.
protocol ClientKind {
    /// "administrator", "platform identity".
    static var noun: String { get }
    /// The `add` argument's name and help ("name", "host").
    static var nameArgument: (valueName: String, help: String) { get }
    /// The column and label of the name in listings ("NAME", "HOST").
    static var nameHeader: String { get }
    /// The `add` command's discussion.
    static var addDiscussion: String { get }
    /// The command group ("admins", "identities"), for hints.
    static var group: String { get }
    static func add(_ name: String, to store: IdentityStore) throws -> NewClient
    static func list(_ store: IdentityStore) throws -> [Client]
    static func remove(_ clientID: String, from store: IdentityStore) throws
}

extension ClientKind {
    /// "an administrator", "a platform identity".
    static var withArticle: String { (noun.first.map { "aeiou".contains($0) } == true ? "an " : "a ") + noun }
    /// "administrators", "platform identities".
    static var plural: String { noun.hasSuffix("y") ? noun.dropLast() + "ies" : noun + "s" }
}

/// `cmkctl admins|identities add NAME`.
struct AddClient<Kind: ClientKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "add", abstract: "Add \(Kind.withArticle) and print its client id and secret (shown once).",
                             discussion: Kind.addDiscussion)
    }

    @Argument(help: ArgumentHelp(Kind.nameArgument.help, valueName: Kind.nameArgument.valueName)) var name: String
    @OptionGroup var options: VaultStateOptions

    func run() throws {
        let store = try options.open()
        let client = try options.run { try Kind.add(name, to: store) }
        try options.printNewClient(client, tenant: store.tenant, nameLabel: Kind.nameHeader.lowercased())
    }
}

/// `cmkctl admins|identities list`.
struct ListClients<Kind: ClientKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "list", abstract: "List the \(Kind.plural) (never their secrets).")
    }

    @OptionGroup var options: VaultStateOptions

    func run() throws {
        let store = try options.open()
        try options.printClients(try options.run { try Kind.list(store) }, nameHeader: Kind.nameHeader)
    }
}

/// `cmkctl admins|identities remove CLIENT-ID`.
struct RemoveClient<Kind: ClientKind>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "remove",
                             abstract: "Remove \(Kind.withArticle): its secret stops working and its tokens are refused from the next request on.")
    }

    @Argument(help: ArgumentHelp("The client id (`cmkctl \(Kind.group) list`).", valueName: "client-id")) var clientID: String
    @OptionGroup var options: VaultStateOptions

    func run() throws {
        let store = try options.open()
        try options.run { try Kind.remove(clientID, from: store) }
        if options.json { return try Output.json(["removed": clientID]) }
        Output.line("removed \(Kind.noun) \(clientID)")
    }
}

/// `cmkctl admins`: the customer's CMK administrators in the vault service (SPEC §11).
struct AdminsCommand: ParsableCommand, ClientKind {
    static let configuration = CommandConfiguration(
        commandName: "admins",
        abstract: "Add, list or remove the CMK administrators of the vault service (at most 10).",
        discussion: """
            CMK administrators are the customer's people: with their client id and secret they get 1-hour \
            tokens from cmk-vault, create, list and revoke the service principal's keys and read the security log. \
            Run on the vault host as the vault service's user; the store is <dir>/identity.sqlite (--vault-state). \
            Names: 1-64 characters, \(Names.administratorNameCharacters), unique ignoring case.
            """,
        subcommands: [AddClient<AdminsCommand>.self, ListClients<AdminsCommand>.self, RemoveClient<AdminsCommand>.self])

    static let noun = "administrator"
    static let nameArgument = (valueName: "name", help: "The administrator's display name (1-64 characters).")
    static let nameHeader = "NAME"
    static let addDiscussion = "The 11th administrator is refused: remove one first with `cmkctl admins remove CLIENT-ID`."
    static let group = "admins"
    static func add(_ name: String, to store: IdentityStore) throws -> NewClient { try store.addAdministrator(name: name) }
    static func list(_ store: IdentityStore) throws -> [Client] { try store.administrators() }
    static func remove(_ clientID: String, from store: IdentityStore) throws { try store.removeAdministrator(clientID: clientID) }
}
