import CMKConfiguration
import Testing

@Suite("cmk-vault configuration")
struct VaultServiceConfigurationTests {}
