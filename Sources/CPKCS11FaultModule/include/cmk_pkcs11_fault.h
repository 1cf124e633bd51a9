#ifndef CMK_PKCS11_FAULT_H
#define CMK_PKCS11_FAULT_H
// A fault-injecting PKCS#11 module for the tests (docs/providers/pkcs11.md, "Tests"): built as the
// dynamic library libCPKCS11FaultModule.so and given to the provider as vault.pkcs11.module. Its
// C_GetFunctionList loads the real module named by CMK_PKCS11_FAULT_MODULE (e.g. a copy of
// libsofthsm2.so) and forwards every call to it, except that before each call of the functions the
// provider uses it reads the file named by CMK_PKCS11_FAULT_CONTROL, if present (the file is
// consumed: read, then removed; its rules replace the previous ones). One rule a line:
//
//     <function|*> <CK_RV, 0x.. or decimal> <count, -1 = until the next control file> <delay ms> [<gate file> [<gate timeout ms>]]
//
// The first rule naming the function (or `*`) with calls left applies: the call waits until the gate
// file exists (at most the timeout, default 10 s), sleeps the delay, then returns the CK_RV without
// calling the real module, or forwards the call when the CK_RV is 0. A control file with no rules
// (e.g. `clear`) removes them all. Each rule applied appends `<function> <CK_RV in hex>` to the file
// named by CMK_PKCS11_FAULT_LOG, when set. Load one copy of the library per test: its state is
// per loaded file. Never key material in the log (no arguments are written).
#endif
