import CMKCore
import CMKKeyVaultAPI
import Foundation
import Logging
import NIOPosix

/// Executes the keys' rotation policies (docs/vault-service.md, "Rotation policy"): every
/// `vault.rotation-check-interval`, and once at start, it asks the keys API what each live key's
/// policy wants now and does it.
///
/// - **Rotate**: a `key-rotated` record (actor `rotation-policy`) is appended first — nothing is
///   done when it cannot be made durable, the next check tries again — then the same rotation as
///   `POST /keys/{name}/rotate`, only while the version judged due is still the current one.
///   Due-ness comes from the current version's dates, so once the new version is durable the key
///   is no longer due: a crash before that repeats the attempt (one more record, one version), a
///   crash after it finds nothing due. Then a journal line and `KeyNewVersionCreated`.
/// - **Near expiry / expired**: a `key-near-expiry` or `key-expired` record, a journal warning
///   and the event, then a marker in the key's record so each version is warned once, also across
///   restarts (a crash between the record and the marker repeats the warning once; never lost).
struct RotationScheduler: Sendable {
    /// The actor of the records the scheduler appends.
    static let actor = "rotation-policy"

    let api: KeyVaultAPI
    let events: any ServiceEventSink
    let keyEvents: (any KeyEventSink)?
    let interval: Duration
    let logger: Logger

    /// Checks now, then every `interval`, until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            await check()
            try? await Task.sleep(for: interval)
        }
    }

    /// One check of every key; returns the actions carried out.
    @discardableResult
    func check() async -> [LifecycleAction] {
        let api = self.api
        let due: [LifecycleAction]
        do {
            due = try await NIOThreadPool.singleton.runIfActive { try api.dueLifecycleActions() }
        } catch {
            logger.error("The rotation policies could not be read; they are checked again at the next interval.", metadata: [
                "message_id": .string(VaultMessageID.rotationPolicyFailed), "cmk_error": .string(Self.describe(error)),
            ])
            return []
        }
        var done: [LifecycleAction] = []
        for action in due {
            do {
                if try await perform(action) { done.append(action) }
            } catch {
                logger.error("A key's rotation policy could not be carried out; it is tried again at the next check.", metadata: [
                    "message_id": .string(VaultMessageID.rotationPolicyFailed), "cmk_key": .string(action.keyName),
                    "cmk_version": .string(action.version), "cmk_error": .string(Self.describe(error)),
                ])
            }
        }
        return done
    }

    /// Carries out one action; false when another change got there first (nothing to do).
    func perform(_ action: LifecycleAction) async throws -> Bool {
        let api = self.api
        var details = ["key": action.keyName, "version": action.version]
        if let expires = action.expires { details["expires"] = String(expires) }
        switch action.kind {
        case .rotate(let trigger):
            details["trigger"] = trigger
            let event = ServiceEvent(operation: "key-rotated", actor: Self.actor, role: Self.actor, address: "local", details: details)
            let index = try await events.record(event)
            CrashPoints.hit("rotation-policy.after-record")
            let record: KeyVersionRecord?
            do {
                record = try await NIOThreadPool.singleton.runIfActive { try api.rotate(action.keyName, ifCurrent: action.version) }
            } catch {
                _ = try? await events.record(event.failed(recordIndex: index, reason: Self.describe(error)))
                throw error
            }
            guard let record else {
                _ = try? await events.record(event.failed(recordIndex: index, reason: "the current version changed before the rotation"))
                return false
            }
            CrashPoints.hit("rotation-policy.before-follow-up")
            logger.notice("The rotation policy rotated a key.", metadata: [
                "message_id": .string(VaultMessageID.keyRotatedByPolicy), "cmk_key": .string(action.keyName),
                "cmk_previous_version": .string(action.version), "cmk_version": .string(record.version), "cmk_trigger": .string(trigger),
            ])
            keyEvents?.publish(KeyEvent(kind: .newVersionCreated, keyName: action.keyName, version: record.version, notBefore: record.notBefore,
                                        expires: record.expires, time: Date(timeIntervalSince1970: TimeInterval(record.created))))
        case .nearExpiry, .expired:
            let expired = action.kind == .expired
            try await events.record(ServiceEvent(operation: expired ? "key-expired" : "key-near-expiry", actor: Self.actor, role: Self.actor,
                                                 address: "local", details: details))
            logger.warning(expired ? "A root key's current version has expired." : "A root key's current version expires soon.", metadata: [
                "message_id": .string(expired ? VaultMessageID.keyExpired : VaultMessageID.keyNearExpiry), "cmk_key": .string(action.keyName),
                "cmk_version": .string(action.version), "cmk_expires": .string(action.expires.map(String.init) ?? "none"),
            ])
            try await NIOThreadPool.singleton.runIfActive { try api.markWarned(action) }
            keyEvents?.publish(KeyEvent(kind: expired ? .expired : .nearExpiry, keyName: action.keyName, version: action.version,
                                        notBefore: action.notBefore, expires: action.expires))
        }
        return true
    }

    /// An error as the journal may show it: its description (store and log errors name files and
    /// codes, never key material).
    static func describe(_ error: any Error) -> String {
        if let error = error as? KeyVaultError { return "\(error.status) \(error.code)" }
        return String(describing: error).prefix(300).description
    }
}
