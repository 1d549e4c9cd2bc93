import SpaceOwnership
import StratosCore
import Testing

@Suite struct GrantDelegationTests {
    let owner = SigningKey.generate().did
    let bob = SigningKey.generate().did
    let carol = SigningKey.generate().did
    let dave = SigningKey.generate().did
    var space: SpaceID { SpaceID(owner: owner, name: "profile") }

    func grant(_ issuer: DID, _ grantee: DID, _ actions: GrantActions, _ collections: [String] = ["users"], expires: Int64? = nil) -> Grant {
        Grant(space: space, issuer: issuer, grantee: grantee, actions: actions, collections: collections, issuedAtMilliseconds: 0, expiresAtMilliseconds: expires)
    }

    @Test func aChainBacksWhatItCovers() {
        let toBob = grant(owner, bob, [.read, .write, .admin])
        let toCarol = grant(bob, carol, [.read])
        let held: [DID: [Grant]] = [bob: [toBob], carol: [toCarol]]
        #expect(GrantDelegation.isBacked(toCarol, controllers: [owner], nowMilliseconds: 1, grantsTo: { held[$0] ?? [] }))
        // More than bob holds: another collection, all collections, another action.
        for wider in [grant(bob, carol, [.read], ["secrets"]), grant(bob, carol, [.read], []), grant(bob, carol, [.execute])] {
            #expect(!GrantDelegation.isBacked(wider, controllers: [owner], nowMilliseconds: 1, grantsTo: { held[$0] ?? [] }))
        }
        // Without admin, or once bob's grant expired, nothing bob signed counts.
        let noAdmin: [DID: [Grant]] = [bob: [grant(owner, bob, [.read, .write])]]
        #expect(!GrantDelegation.isBacked(toCarol, controllers: [owner], nowMilliseconds: 1, grantsTo: { noAdmin[$0] ?? [] }))
        let expiring: [DID: [Grant]] = [bob: [grant(owner, bob, [.read, .admin], expires: 10)]]
        #expect(!GrantDelegation.isBacked(grant(bob, carol, [.read], expires: 5), controllers: [owner], nowMilliseconds: 11, grantsTo: { expiring[$0] ?? [] }))
        // A delegated grant may not outlive its parent.
        #expect(!GrantDelegation.isBacked(toCarol, controllers: [owner], nowMilliseconds: 1, grantsTo: { expiring[$0] ?? [] }))
    }

    @Test func cyclesAndLongChainsAreNotBacked() {
        // bob and carol grant each other admin, with nobody above them.
        let loop: [DID: [Grant]] = [bob: [grant(carol, bob, [.read, .admin])], carol: [grant(bob, carol, [.read, .admin])]]
        #expect(!GrantDelegation.isBacked(grant(bob, dave, [.read]), controllers: [owner], nowMilliseconds: 1, grantsTo: { loop[$0] ?? [] }))
        // owner → k1 → k2 → … : only depthMax links below the owner count.
        let keys = (0...GrantDelegation.depthMax + 1).map { _ in SigningKey.generate().did }
        var held: [DID: [Grant]] = [keys[0]: [grant(owner, keys[0], [.read, .admin])]]
        for index in 1..<keys.count { held[keys[index]] = [grant(keys[index - 1], keys[index], [.read, .admin])] }
        #expect(GrantDelegation.isBacked(held[keys[GrantDelegation.depthMax]]![0], controllers: [owner], nowMilliseconds: 1, grantsTo: { held[$0] ?? [] }))
        #expect(!GrantDelegation.isBacked(held[keys[GrantDelegation.depthMax + 1]]![0], controllers: [owner], nowMilliseconds: 1, grantsTo: { held[$0] ?? [] }))
    }
}
