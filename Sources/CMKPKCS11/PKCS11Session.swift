import CMKCore
import CPKCS11
import Foundation

/// One open, logged-in session on the token: the object and key-wrap calls the provider makes.
/// Used by one caller at a time (``PKCS11SessionPool`` hands it out).
struct PKCS11Session {
    let module: PKCS11Module
    let handle: CK_SESSION_HANDLE

    /// The handles of the objects matching `template`.
    func find(_ template: [PKCS11Attribute]) throws(PKCS11Failure) -> [CK_OBJECT_HANDLE] {
        try PKCS11Attribute.withTemplate(template) { (pointer, count) throws(PKCS11Failure) in
            try module.call("C_FindObjectsInit") { $0.C_FindObjectsInit?(handle, pointer, count) }
        }
        var found: [CK_OBJECT_HANDLE] = []
        var batch = [CK_OBJECT_HANDLE](repeating: 0, count: 64)
        var failure: PKCS11Failure?
        while true {
            var returned: CK_ULONG = 0
            do {
                try module.call("C_FindObjects") { f in batch.withUnsafeMutableBufferPointer { f.C_FindObjects?(handle, $0.baseAddress, 64, &returned) } }
            } catch {
                failure = error
                break
            }
            found += batch.prefix(Int(returned))
            if returned < 64 { break }
        }
        try module.call("C_FindObjectsFinal") { $0.C_FindObjectsFinal?(handle) }
        if let failure { throw failure }
        return found
    }

    /// The values of `types` on `object`; nil for an attribute the object lacks. Never asked for
    /// `CKA_VALUE` of a token key: the only `CKA_VALUE` reads are of a data object (the key
    /// record) and of the session object ``unwrap(_:with:mechanism:)`` makes.
    func attributes(_ types: [UInt], of object: CK_OBJECT_HANDLE) throws(PKCS11Failure) -> [UInt: [UInt8]] {
        var template = types.map { CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE($0), pValue: nil, ulValueLen: 0) }
        let count = CK_ULONG(template.count)
        try module.call("C_GetAttributeValue") { f in template.withUnsafeMutableBufferPointer { f.C_GetAttributeValue?(handle, object, $0.baseAddress, count) } }
        var buffers: [UnsafeMutableRawPointer?] = []
        defer { buffers.forEach { $0?.deallocate() } }
        for index in template.indices {
            let length = template[index].ulValueLen
            if length == CK_UNAVAILABLE_INFORMATION || length == 0 {
                buffers.append(nil)
                template[index].pValue = nil
            } else {
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: Int(length), alignment: 8)
                buffers.append(buffer)
                template[index].pValue = buffer
            }
        }
        let wanted = template.enumerated().filter { $0.element.pValue != nil }
        var second = wanted.map(\.element)
        if !second.isEmpty {
            let secondCount = CK_ULONG(second.count)
            try module.call("C_GetAttributeValue") { f in second.withUnsafeMutableBufferPointer { f.C_GetAttributeValue?(handle, object, $0.baseAddress, secondCount) } }
        }
        var values: [UInt: [UInt8]] = [:]
        for (index, attribute) in template.enumerated() {
            if attribute.ulValueLen == CK_UNAVAILABLE_INFORMATION { continue }
            if let filled = second.first(where: { $0.type == attribute.type }), let pointer = filled.pValue {
                values[types[index]] = Array(UnsafeRawBufferPointer(start: pointer, count: Int(filled.ulValueLen)))
            } else {
                values[types[index]] = []
            }
        }
        return values
    }

    func setAttributes(_ attributes: [PKCS11Attribute], of object: CK_OBJECT_HANDLE) throws(PKCS11Failure) {
        try PKCS11Attribute.withTemplate(attributes) { (pointer, count) throws(PKCS11Failure) in
            try module.call("C_SetAttributeValue") { $0.C_SetAttributeValue?(handle, object, pointer, count) }
        }
    }

    func create(_ attributes: [PKCS11Attribute]) throws(PKCS11Failure) -> CK_OBJECT_HANDLE {
        var object: CK_OBJECT_HANDLE = 0
        try PKCS11Attribute.withTemplate(attributes) { (pointer, count) throws(PKCS11Failure) in
            try module.call("C_CreateObject") { $0.C_CreateObject?(handle, pointer, count, &object) }
        }
        return object
    }

    func destroy(_ object: CK_OBJECT_HANDLE) throws(PKCS11Failure) {
        try module.call("C_DestroyObject") { $0.C_DestroyObject?(handle, object) }
    }

    /// Whether the session is logged in as the user: `C_GetSessionInfo`'s state is
    /// `CKS_RO_USER_FUNCTIONS` (1) or `CKS_RW_USER_FUNCTIONS` (3).
    func isUserLoggedIn() throws(PKCS11Failure) -> Bool {
        // The shim declares C_GetSessionInfo untyped; CK_SESSION_INFO is four CK_ULONGs
        // (slotID, state, flags, ulDeviceError), so an array of four has its layout.
        typealias GetSessionInfo = @convention(c) (CK_SESSION_HANDLE, UnsafeMutablePointer<CK_ULONG>?) -> CK_RV
        guard let function = module.functions.pointee.C_GetSessionInfo else { throw PKCS11Failure("C_GetSessionInfo", 0x54) }
        var info = [CK_ULONG](repeating: 0, count: 4)
        let rv = info.withUnsafeMutableBufferPointer { unsafeBitCast(function, to: GetSessionInfo.self)(handle, $0.baseAddress) }
        guard rv == 0 else { throw PKCS11Failure("C_GetSessionInfo", rv) }
        return info[1] == 1 || info[1] == 3
    }

    /// Generates a secret key inside the token with `CKM_AES_KEY_GEN`.
    func generateAESKey(_ attributes: [PKCS11Attribute]) throws(PKCS11Failure) -> CK_OBJECT_HANDLE {
        var object: CK_OBJECT_HANDLE = 0
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN), pParameter: nil, ulParameterLen: 0)
        try PKCS11Attribute.withTemplate(attributes) { (pointer, count) throws(PKCS11Failure) in
            try module.call("C_GenerateKey") { $0.C_GenerateKey?(handle, &mechanism, pointer, count, &object) }
        }
        return object
    }

    /// Generates an RSA key pair inside the token with `CKM_RSA_PKCS_KEY_PAIR_GEN`.
    func generateRSAKeyPair(public publicAttributes: [PKCS11Attribute], private privateAttributes: [PKCS11Attribute])
        throws(PKCS11Failure) -> (public: CK_OBJECT_HANDLE, private: CK_OBJECT_HANDLE) {
        var publicKey: CK_OBJECT_HANDLE = 0
        var privateKey: CK_OBJECT_HANDLE = 0
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_RSA_PKCS_KEY_PAIR_GEN), pParameter: nil, ulParameterLen: 0)
        try PKCS11Attribute.withTemplate(publicAttributes) { (publicTemplate, publicCount) throws(PKCS11Failure) in
            try PKCS11Attribute.withTemplate(privateAttributes) { (privateTemplate, privateCount) throws(PKCS11Failure) in
                try module.call("C_GenerateKeyPair") {
                    $0.C_GenerateKeyPair?(handle, &mechanism, publicTemplate, publicCount, privateTemplate, privateCount, &publicKey, &privateKey)
                }
            }
        }
        return (publicKey, privateKey)
    }

    /// Decrypts an RSA-OAEP-256 wrapping (`CKM_RSA_PKCS_OAEP`, SHA-256, MGF1-SHA-256, empty label)
    /// with `privateKey` on the token: the DEK comes back into memory zeroed when released.
    func decryptOAEP256(_ wrapped: Data, with privateKey: CK_OBJECT_HANDLE) throws(PKCS11Failure) -> SecretBytes {
        var parameters = CK_RSA_PKCS_OAEP_PARAMS(hashAlg: CK_MECHANISM_TYPE(CKM_SHA256), mgf: CK_ULONG(CKG_MGF1_SHA256),
                                                 source: CK_ULONG(CKZ_DATA_SPECIFIED), pSourceData: nil, ulSourceDataLen: 0)
        var input = [UInt8](wrapped)
        let inputCount = CK_ULONG(input.count)
        try withUnsafeMutablePointer(to: &parameters) { (pointer) throws(PKCS11Failure) in
            var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_RSA_PKCS_OAEP), pParameter: UnsafeMutableRawPointer(pointer),
                                         ulParameterLen: CK_ULONG(MemoryLayout<CK_RSA_PKCS_OAEP_PARAMS>.size))
            try module.call("C_DecryptInit") { $0.C_DecryptInit?(handle, &mechanism, privateKey) }
        }
        // One call with a buffer as long as the modulus: the plaintext is shorter. A size query
        // first would leave the operation active on tokens that end it only on a real decrypt.
        var length = CK_ULONG(input.count)
        var failure: PKCS11Failure?
        let buffer = SecretBytes(count: input.count) { output in
            do {
                try module.call("C_Decrypt") { f in
                    input.withUnsafeMutableBufferPointer { f.C_Decrypt?(handle, $0.baseAddress, inputCount, output.baseAddress, &length) }
                }
            } catch {
                failure = error as? PKCS11Failure ?? PKCS11Failure("C_Decrypt", 0x05)
            }
        }
        defer { buffer.zeroize() }
        if let failure { throw failure }
        guard Int(length) <= input.count else { throw PKCS11Failure("C_Decrypt", 0x150) }
        return buffer.withUnsafeBytes { SecretBytes(copying: $0.prefix(Int(length))) }
    }

    /// Wraps the secret `key` (a DEK) under `wrappingKey`: the DEK becomes a session object that is
    /// extractable but lives only for this call (destroyed before returning), then C_WrapKey.
    func wrap(_ key: SecretBytes, with wrappingKey: CK_OBJECT_HANDLE, mechanism type: CK_MECHANISM_TYPE,
              keyType: UInt = CKK_AES) throws(PKCS11Failure) -> Data {
        let object = try create([
            .ulong(CKA_CLASS, CKO_SECRET_KEY), .ulong(CKA_KEY_TYPE, keyType), .bool(CKA_TOKEN, false), .bool(CKA_PRIVATE, true),
            .bool(CKA_SENSITIVE, false), .bool(CKA_EXTRACTABLE, true), .secret(CKA_VALUE, key),
        ])
        defer { try? destroy(object) }
        var mechanism = CK_MECHANISM(mechanism: type, pParameter: nil, ulParameterLen: 0)
        var length: CK_ULONG = 0
        try module.call("C_WrapKey") { $0.C_WrapKey?(handle, &mechanism, wrappingKey, object, nil, &length) }
        var output = [UInt8](repeating: 0, count: Int(length))
        try module.call("C_WrapKey") { f in output.withUnsafeMutableBufferPointer { f.C_WrapKey?(handle, &mechanism, wrappingKey, object, $0.baseAddress, &length) } }
        return Data(output.prefix(Int(length)))
    }

    /// Unwraps `wrapped` under `unwrappingKey` into a session object, reads its value (the DEK: the
    /// one CKA_VALUE the provider reads from a key) and destroys it.
    func unwrap(_ wrapped: Data, with unwrappingKey: CK_OBJECT_HANDLE, mechanism type: CK_MECHANISM_TYPE) throws(PKCS11Failure) -> SecretBytes {
        var mechanism = CK_MECHANISM(mechanism: type, pParameter: nil, ulParameterLen: 0)
        var input = [UInt8](wrapped)
        let inputCount = CK_ULONG(input.count)
        var object: CK_OBJECT_HANDLE = 0
        try PKCS11Attribute.withTemplate([
            .ulong(CKA_CLASS, CKO_SECRET_KEY), .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET), .bool(CKA_TOKEN, false),
            .bool(CKA_PRIVATE, true), .bool(CKA_SENSITIVE, false), .bool(CKA_EXTRACTABLE, true),
        ]) { (pointer, count) throws(PKCS11Failure) in
            try module.call("C_UnwrapKey") { f in
                input.withUnsafeMutableBufferPointer { f.C_UnwrapKey?(handle, &mechanism, unwrappingKey, $0.baseAddress, inputCount, pointer, count, &object) }
            }
        }
        defer { try? destroy(object) }
        var attribute = CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_VALUE), pValue: nil, ulValueLen: 0)
        try module.call("C_GetAttributeValue") { $0.C_GetAttributeValue?(handle, object, &attribute, 1) }
        let length = Int(attribute.ulValueLen)
        guard length > 0, attribute.ulValueLen != CK_UNAVAILABLE_INFORMATION, length <= 1024 else { throw PKCS11Failure("C_GetAttributeValue", 0x13) }
        var failure: PKCS11Failure?
        let secret = SecretBytes(count: length) { buffer in
            attribute.pValue = buffer.baseAddress
            do {
                try module.call("C_GetAttributeValue") { $0.C_GetAttributeValue?(handle, object, &attribute, 1) }
            } catch {
                failure = error as? PKCS11Failure ?? PKCS11Failure("C_GetAttributeValue", 0x05)
            }
        }
        if let failure {
            secret.zeroize()
            throw failure
        }
        return secret
    }
}
