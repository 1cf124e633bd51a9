/// A storage driver violated the ``StorageDriver`` contract in one ``StorageDriverConformance``
/// check: the same failure type the vault conformance suite throws.
public typealias StorageConformanceFailure = ConformanceFailure
