import Testing
import VMBusChannel
import VMBusGuest
import VMBusHost
import VMBusLoopback
import VMBusMemory
import VMBusWire

@testable import VMBusStorage

/// A host that sets up like storvsp and then answers EXECUTE_SRB as a test scripts it: the
/// guest's side of 10 §8.
final class ScriptedStorageHost: HostDevice {
    let offer = HostOffer(interfaceType: DeviceClass.scsi.classID, interfaceInstance: GUID(data1: 0xBAD5, data2: 0, data3: 0, data4: 0))
    let machine = Locked(StorvspNegotiation())
    /// Given the request's id and SRB, the packets to send back (completion payloads by id).
    let script: @Sendable (UInt64, SCSIRequest) -> [(id: UInt64, payload: [UInt8])]

    init(script: @escaping @Sendable (UInt64, SCSIRequest) -> [(id: UInt64, payload: [UInt8])]) { self.script = script }

    func opened(_ channel: Channel, info: HostChannelInfo) {
        channel.onInterrupt { [self] in
            var replies: [(UInt64, [UInt8])] = []
            _ = try? channel.drain { descriptor, payload in
                var bytes: [UInt8] = []
                bytes.append(span: payload)
                guard let request = try? StoragePacket(parsing: bytes[...]) else { return }
                if case .request(let srb) = request.body, request.operation == .executeSRB {
                    replies += self.script(descriptor.transactionID, srb).map { ($0.id, $0.payload) }
                    return
                }
                let reply = self.machine.withLock { $0.receive(request) }
                replies.append((descriptor.transactionID, StoragePacket.completion(status: reply.status, body: reply.body).encode()))
            }
            for (id, payload) in replies { _ = try? channel.trySend(completion: payload[...], transactionID: id) }
        }
    }

    /// A good completion with `transferred` bytes (what is in the guest's buffer is left as
    /// it is: zeros, for a REPORT LUNS of no LUNs).
    static func good(_ transferred: UInt32) -> [UInt8] {
        StoragePacket.completion(body: .request(.completion(srbStatus: .success, scsiStatus: .good, transferred: transferred))).encode()
    }
}

@Suite struct StorvscHostileTests {
    /// Brings a controller up against `script`; the test then sends commands by hand.
    /// The bus is returned too: the test keeps it alive (without it nothing is delivered).
    func controller(_ script: @escaping @Sendable (UInt64, SCSIRequest) -> [(id: UInt64, payload: [UInt8])]) async throws -> (LoopbackBus, StorvscController) {
        let bus = try LoopbackBus()
        bus.host.register(ScriptedStorageHost(script: script))
        let driver = StorvscDriver()
        bus.guest.register(driver)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        return (bus, try #require(driver.allControllers.first))
    }

    @Test func completionsForUnknownIdsAreDroppedAndShortOnesFailTheRequest() async throws {
        let (bus, controller) = try await self.controller { id, srb in
            switch srb.cdb.first {
            // TEST UNIT READY: first a completion for an id nobody sent, then a short one.
            case 0x00: return [(id &+ 1000, ScriptedStorageHost.good(0)), (id, Array(ScriptedStorageHost.good(0).prefix(48)))]
            // The scan's REPORT LUNS: 8 bytes of the (zeroed) buffer, a list of no LUNs.
            case 0xA0: return [(id, ScriptedStorageHost.good(8))]
            default: return [(id, ScriptedStorageHost.good(0))]
            }
        }
        await #expect(throws: BlockDeviceError.self) {
            _ = try await controller.command(lun: 0, cdb: SCSICommand.testUnitReady.encode(), direction: .none)
        }
        // The stray completion was counted and dropped, not taken for another request.
        let channel = try #require(controller.state.withLock { $0.channels.first })
        #expect(channel.statistics.rejectedCompletions == 1)
        // The channel still works: the next command is answered.
        let cdb = SCSICommand.read(SCSIBlockCommand(linuxLBA: 0, blockCount: 1)).encode()
        let (outcome, _) = try await controller.command(lun: 0, cdb: cdb, direction: .read, readCount: 512)
        #expect(outcome.isGood)
        withExtendedLifetime(bus) {}
    }

    @Test func oversizedLengthsAreClamped() async throws {
        let (bus, controller) = try await self.controller { id, srb in
            guard srb.cdb.first == 0x28 else { return [(id, ScriptedStorageHost.good(srb.cdb.first == 0xA0 ? 8 : 0))] }
            // A read that claims 1 MiB moved into a 4 KiB buffer, with 20 bytes of sense
            // claimed as 255 on a failure.
            var completion = SCSIRequest.completion(srbStatus: .success, scsiStatus: .good, transferred: 1 << 20)
            completion.senseInfoLength = 255
            return [(id, StoragePacket.completion(body: .request(completion)).encode())]
        }
        let cdb = SCSICommand.read(SCSIBlockCommand(linuxLBA: 0, blockCount: 8)).encode()
        let (outcome, bytes) = try await controller.command(lun: 0, cdb: cdb, direction: .read, readCount: 4096)
        #expect(outcome.transferred == 4096 && bytes.count == 4096)
        withExtendedLifetime(bus) {}
    }
}
