import Foundation
import Testing
import VMBusCapture
import VMBusChannel
import VMBusDevices
import VMBusGuest
import VMBusLoopback
import VMBusWire

/// An in-process host and guest with an echo device, captured from the host's side.
@Suite struct LoopbackCaptureTests {
    static let snapLength = 64

    /// Runs a session (connect, offers, GPADL, open, one echo of `payload`) and returns the
    /// capture read back, and the echo channel's relid.
    func capturedSession(payload: [UInt8]) async throws -> (CaptureFile, UInt32) {
        let path = temporaryCapturePath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = try CaptureSink(path: path, snapLength: Self.snapLength, capacity: 4096, startWriter: false)
        let bus = try LoopbackBus(capture: sink)
        let device = EchoDevice(instance: GUID(data1: 0xCA97_0001, data2: 1, data3: 2, data4: 3))
        device.attach(to: bus.host)
        let relid = bus.host.register(device)
        let client = EchoClient(pages: RingPages(each: 4))
        bus.guest.register(client)
        _ = try await bus.guest.connect()
        await bus.guest.settle()
        #expect(try await client.echo(payload) == payload)
        let summary = try sink.close()
        #expect(summary.dropped == 0)
        return (try CaptureFile(path: path), relid)
    }

    static func messageType(_ record: CaptureFile.Record) -> ChannelMessageType? {
        guard record.header.kind == .channelMessage, record.data.count >= 4 else { return nil }
        var reader = WireReader(record.data)
        return (try? reader.readUInt32()).map(ChannelMessageType.init(rawValue:))
    }

    @Test func theControlConversationIsCapturedInOrder() async throws {
        let (file, relid) = try await self.capturedSession(payload: [1, 2, 3])
        #expect(file.records.allSatisfy { $0.header.connection == 1 && $0.header.observer == .host })
        let messages = file.records.compactMap { record in Self.messageType(record).map { ($0, record.header.direction) } }
        let expected: [(ChannelMessageType, CaptureDirection)] = [
            (.initiateContact, .guestToHost), (.versionResponse, .hostToGuest),
            (.requestOffers, .guestToHost), (.offerChannel, .hostToGuest), (.allOffersDelivered, .hostToGuest),
            (.gpadlHeader, .guestToHost), (.gpadlCreated, .hostToGuest),
            (.openChannel, .guestToHost), (.openChannelResult, .hostToGuest),
        ]
        // Each expected message appears, in this order (others may come between).
        var rest = messages[...]
        for (type, direction) in expected {
            guard let index = rest.firstIndex(where: { $0.0 == type }) else {
                Issue.record("no \(type.name) after the messages before it; captured: \(messages.map(\.0.name))")
                return
            }
            #expect(rest[index].1 == direction, "\(type.name)")
            rest = rest[(index + 1)...]
        }
        // The host posts to SINT 2; the guest's InitiateContact went to connection id 4, which the
        // host's side does not see (port 0).
        #expect(file.records.filter { $0.header.kind == .channelMessage && $0.header.direction == .hostToGuest }
            .allSatisfy { $0.header.port == 2 })
        // The channel was opened on the host's side, before the first packet on it.
        let open = try #require(file.records.firstIndex { $0.header.kind == .channelOpen })
        #expect(file.records[open].header.relid == relid)
        #expect(Array(file.records[open].data) == [0x00, 0x40, 0, 0, 0x00, 0x40, 0, 0])
        let firstPacket = try #require(file.records.firstIndex { $0.header.kind == .ringPacket })
        #expect(open < firstPacket)
        let times = file.records.map(\.timestamp)
        #expect(times == times.sorted())
    }

    @Test func ringPacketsAreCapturedBothWaysCutToTheSnapLength() async throws {
        let payload = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 3) }
        let (file, relid) = try await self.capturedSession(payload: payload)
        let packets = file.records.filter { $0.header.kind == .ringPacket }
        #expect(packets.allSatisfy { $0.header.relid == relid })
        // The guest's request: an in-band packet asking for a completion, 16 + 200 bytes padded to 8.
        let request = try #require(packets.first { $0.header.direction == .guestToHost })
        var reader = WireReader(request.data)
        let descriptor = try PacketDescriptor(from: &reader)
        #expect(descriptor.type == .dataInBand)
        #expect(descriptor.flags.contains(.completionRequested))
        #expect(request.header.originalLength == 216)
        #expect(request.header.flags == .truncated)
        #expect(request.data.count == Self.snapLength)
        #expect(Array(request.data.dropFirst(16)) == Array(payload.prefix(Self.snapLength - 16)))
        // The host's answer: a completion with the same transaction id.
        let answer = try #require(packets.first { $0.header.direction == .hostToGuest })
        var answerReader = WireReader(answer.data)
        let answerDescriptor = try PacketDescriptor(from: &answerReader)
        #expect(answerDescriptor.type == .completion)
        #expect(answerDescriptor.transactionID == descriptor.transactionID)
        #expect(Array(answer.data.dropFirst(16)) == Array(payload.prefix(Self.snapLength - 16)))
        // Each packet rang the other side's doorbell (an empty ring became non-empty).
        let doorbells = file.records.filter { $0.header.kind == .doorbell && $0.header.relid == relid }
        #expect(doorbells.contains { $0.header.direction == .guestToHost })
        #expect(doorbells.contains { $0.header.direction == .hostToGuest })
    }
}
