/// Splits fuzzer input into a sequence of messages: each is a length byte (taken modulo 241, the
/// SynIC payload limit plus one) and that many bytes. The first byte of a message is replaced by
/// a channel message type 0…31, so most inputs reach the state machines instead of the parser.
public func messageSequence(_ input: [UInt8]) -> [[UInt8]] {
    var messages: [[UInt8]] = []
    var index = 0
    while index < input.count {
        let length = Int(input[index]) % 241
        index += 1
        let end = min(index + length, input.count)
        var message = Array(input[index..<end])
        if message.count >= 8 {
            message[0] %= 32
            message[1] = 0
            message[2] = 0
            message[3] = 0
        }
        messages.append(message)
        index = end
    }
    return messages
}
