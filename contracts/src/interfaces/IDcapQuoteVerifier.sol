// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IDcapQuoteVerifier
/// @notice The entry point of an on-chain Intel DCAP quote verifier, shaped like Automata's
///         `AutomataDcapAttestation.verifyAndAttestOnChain` (automata-dcap-attestation, evm v1.x).
/// @dev On success `output` is Automata's packed `Output`:
///      quoteVersion (uint16, big-endian) || tee (bytes4: 0x00000000 SGX, 0x00000081 TDX) || tcbStatus (uint8,
///      Automata's TCBStatus enum: 0 OK, 1 SWHardeningNeeded, 2 ConfigurationAndSWHardeningNeeded,
///      3 ConfigurationNeeded, 4 OutOfDate, 5 OutOfDateConfigurationNeeded, 6 Revoked, 7 Unrecognized)
///      || fmspc (bytes6) || quote body (384-byte SGX enclave report or 584-byte TD10 report) || abi.encode(string[] advisoryIDs).
interface IDcapQuoteVerifier {
    /// @notice Verify `rawQuote` against the on-chain PCCS collateral.
    /// @return success Whether the quote verified.
    /// @return output The packed verified output (see the interface NatSpec), or an error string when !success.
    function verifyAndAttestOnChain(bytes calldata rawQuote) external returns (bool success, bytes memory output);
}
