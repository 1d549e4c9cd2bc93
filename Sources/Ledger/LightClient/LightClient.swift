import StratosCore

/// Light-client checks of block headers against a trusted validator set (CometBFT
/// `spec/light-client/verification`): sequential when the set is the trusted one, skipping
/// with trust level 1/3 when it changed.
public enum LightClient {
    /// Checks that `header` was decided: `commit` is for it, and it is signed by
    ///  - more than 2/3 of `trusted` when the header names that set; otherwise
    ///  - more than 1/3 of `trusted` (at least one honest validator vouches for the new set),
    ///    and more than 2/3 of `headerValidators`, which must be the set the header names.
    public static func verify(
        header: BlockHeader, commit: Commit, headerValidators: ValidatorSet?, trusted: ValidatorSet, chainID: String
    ) throws(LedgerError) {
        guard header.chainID == chainID else { throw LedgerError(.invalidProof, "the header is from chain \(header.chainID), not \(chainID)") }
        guard commit.height == header.height, commit.blockID == header.hash else {
            throw LedgerError(.invalidProof, "the commit is not for this header")
        }
        if header.validatorsHash == trusted.hash {
            try commit.verify(validators: trusted, chainID: chainID)
            return
        }
        guard let headerValidators, headerValidators.hash == header.validatorsHash else {
            throw LedgerError(.invalidProof, "the validator set changed and the proof does not carry the header's set")
        }
        let trustedPower = try commit.signedPower(validators: trusted, chainID: chainID, requireMembership: false)
        guard trusted.isOneThird(trustedPower) else {
            throw LedgerError(.invalidProof, "validators holding more than 1/3 of the trusted power did not sign: cannot skip to this header")
        }
        try commit.verify(validators: headerValidators, chainID: chainID)
    }
}
