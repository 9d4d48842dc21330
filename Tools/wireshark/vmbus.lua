-- Wireshark/tshark dissector for swift-vmbus captures (docs/CAPTURE.md).
--
--   tshark -X lua_script:Tools/wireshark/vmbus.lua -r host.pcapng
--   tshark -X lua_script:Tools/wireshark/vmbus.lua -r host.pcapng -T fields -e vmbus.kind -e vmbus.msg.type
--
-- Or copy it into Wireshark's personal plugins folder. It decodes the 24-byte record header
-- every record starts with, the channel message type (by name), the ring packet descriptor
-- and the substrate frame header; the rest of a record is shown as bytes.

local vmbus = Proto("vmbus", "swift-vmbus capture record")

local kinds = {
    [1] = "substrate frame", [2] = "channel message", [3] = "ring packet", [4] = "doorbell",
    [5] = "channel open", [6] = "channel close", [7] = "drops",
}
local directions = { [0] = "host→guest", [1] = "guest→host" }
local observers = { [0] = "host", [1] = "guest" }
local messages = {
    [0] = "INVALID", [1] = "OFFERCHANNEL", [2] = "RESCIND_CHANNELOFFER", [3] = "REQUESTOFFERS",
    [4] = "ALLOFFERS_DELIVERED", [5] = "OPENCHANNEL", [6] = "OPENCHANNEL_RESULT", [7] = "CLOSECHANNEL",
    [8] = "GPADL_HEADER", [9] = "GPADL_BODY", [10] = "GPADL_CREATED", [11] = "GPADL_TEARDOWN",
    [12] = "GPADL_TORNDOWN", [13] = "RELID_RELEASED", [14] = "INITIATE_CONTACT", [15] = "VERSION_RESPONSE",
    [16] = "UNLOAD", [17] = "UNLOAD_RESPONSE", [18] = "OPEN_RESERVED_CHANNEL", [19] = "CLOSE_RESERVED_CHANNEL",
    [20] = "CLOSE_RESERVED_RESPONSE", [21] = "TL_CONNECT_REQUEST", [22] = "MODIFYCHANNEL",
    [23] = "TL_CONNECT_RESULT", [24] = "MODIFYCHANNEL_RESPONSE", [25] = "MODIFY_CONNECTION",
    [26] = "MODIFY_CONNECTION_RESPONSE", [27] = "PAUSE", [28] = "PAUSE_RESPONSE", [29] = "RESUME",
}
local frames = { [1] = "HELLO", [2] = "WELCOME", [3] = "REFUSE", [4] = "MESSAGE", [5] = "DOORBELLS", [6] = "GOODBYE" }
local packets = {
    [0x6] = "in-band", [0x7] = "transfer-pages", [0x8] = "gpadl", [0x9] = "gpa-direct", [0xB] = "completion",
}
local reasons = {
    [0] = "closed locally", [1] = "closed by peer", [2] = "rescinded", [3] = "ring corrupted", [4] = "connection lost",
}

local f = {
    version = ProtoField.uint8("vmbus.version", "Version"),
    kind = ProtoField.uint8("vmbus.kind", "Kind", base.DEC, kinds),
    direction = ProtoField.uint8("vmbus.direction", "Direction", base.DEC, directions),
    observer = ProtoField.uint8("vmbus.observer", "Observer", base.DEC, observers),
    flags = ProtoField.uint16("vmbus.flags", "Flags", base.HEX),
    truncated = ProtoField.bool("vmbus.flags.truncated", "Truncated", 16, nil, 0x0001),
    connection = ProtoField.uint32("vmbus.connection", "Connection"),
    relid = ProtoField.uint32("vmbus.relid", "Relid"),
    port = ProtoField.uint32("vmbus.port", "Port"),
    original_length = ProtoField.uint32("vmbus.original_length", "Original length"),
    msg_type = ProtoField.uint32("vmbus.msg.type", "Message type", base.DEC, messages),
    msg_name = ProtoField.string("vmbus.msg.name", "Message"),
    pkt_type = ProtoField.uint16("vmbus.pkt.type", "Packet type", base.HEX, packets),
    pkt_offset8 = ProtoField.uint16("vmbus.pkt.offset8", "Data offset (8-byte units)"),
    pkt_len8 = ProtoField.uint16("vmbus.pkt.len8", "Length (8-byte units)"),
    pkt_flags = ProtoField.uint16("vmbus.pkt.flags", "Packet flags", base.HEX),
    pkt_tid = ProtoField.uint64("vmbus.pkt.transaction_id", "Transaction id"),
    frame_kind = ProtoField.uint16("vmbus.frame.kind", "Frame kind", base.DEC, frames),
    frame_length = ProtoField.uint32("vmbus.frame.body_length", "Body length"),
    ring_out = ProtoField.uint32("vmbus.open.outgoing", "Outgoing ring bytes"),
    ring_in = ProtoField.uint32("vmbus.open.incoming", "Incoming ring bytes"),
    reason = ProtoField.uint32("vmbus.close.reason", "Close reason", base.DEC, reasons),
    lost = ProtoField.uint64("vmbus.drops.lost", "Records lost"),
    lost_total = ProtoField.uint64("vmbus.drops.total", "Records lost in all"),
    data = ProtoField.bytes("vmbus.data", "Data"),
}
vmbus.fields = f

function vmbus.dissector(buffer, pinfo, tree)
    if buffer:len() < 24 then return 0 end
    pinfo.cols.protocol = "VMBus"
    local root = tree:add(vmbus, buffer(), "swift-vmbus record")
    local header = root:add(buffer(0, 24), "Header")
    header:add(f.version, buffer(0, 1))
    header:add(f.kind, buffer(1, 1))
    header:add(f.direction, buffer(2, 1))
    header:add(f.observer, buffer(3, 1))
    local flags = header:add_le(f.flags, buffer(4, 2))
    flags:add_le(f.truncated, buffer(4, 2))
    header:add_le(f.connection, buffer(8, 4))
    header:add_le(f.relid, buffer(12, 4))
    header:add_le(f.port, buffer(16, 4))
    header:add_le(f.original_length, buffer(20, 4))

    local kind = buffer(1, 1):uint()
    local direction = directions[buffer(2, 1):uint()] or "?"
    local relid = buffer(12, 4):le_uint()
    local data = buffer:len() > 24 and buffer(24) or nil
    local size = data and data:len() or 0
    local info = (kinds[kind] or ("kind " .. kind))
    if kind == 2 and size >= 4 then
        local t = data(0, 4):le_uint()
        root:add_le(f.msg_type, data(0, 4))
        root:add(f.msg_name, data(0, 4), messages[t] or ("UNKNOWN(" .. t .. ")"))
        info = messages[t] or ("message " .. t)
    elseif kind == 3 and size >= 16 then
        root:add_le(f.pkt_type, data(0, 2))
        root:add_le(f.pkt_offset8, data(2, 2))
        root:add_le(f.pkt_len8, data(4, 2))
        root:add_le(f.pkt_flags, data(6, 2))
        root:add_le(f.pkt_tid, data(8, 8))
        local t = data(0, 2):le_uint()
        info = "packet " .. (packets[t] or string.format("0x%x", t)) .. " len " .. (data(4, 2):le_uint() * 8)
            .. " tid " .. tostring(data(8, 8):le_uint64())
    elseif kind == 1 and size >= 8 then
        root:add_le(f.frame_kind, data(0, 2))
        root:add_le(f.frame_length, data(4, 4))
        info = "frame " .. (frames[data(0, 2):le_uint()] or data(0, 2):le_uint())
    elseif kind == 5 and size >= 8 then
        root:add_le(f.ring_out, data(0, 4))
        root:add_le(f.ring_in, data(4, 4))
    elseif kind == 6 and size >= 4 then
        root:add_le(f.reason, data(0, 4))
        info = "close: " .. (reasons[data(0, 4):le_uint()] or data(0, 4):le_uint())
    elseif kind == 7 and size >= 16 then
        root:add_le(f.lost, data(0, 8))
        root:add_le(f.lost_total, data(8, 8))
        info = "drops: " .. tostring(data(0, 8):le_uint64()) .. " lost"
    end
    if data then root:add(f.data, data) end
    pinfo.cols.info = direction .. " relid " .. relid .. " " .. info
    return buffer:len()
end

DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, vmbus)
