-- Wireshark/tshark dissector for swift-vmbus captures (docs/CAPTURE.md).
--
--   tshark -X lua_script:Tools/wireshark/vmbus.lua -r host.pcapng
--   tshark -X lua_script:Tools/wireshark/vmbus.lua -r host.pcapng -T fields -e vmbus.kind -e vmbus.msg.type
--
-- Or copy it into Wireshark's personal plugins folder. It decodes the 24-byte record header
-- every record starts with; channel messages by name with their fields (relids, GUIDs with
-- their class names, GPADLs, versions); the ring packet descriptor, its GPA ranges and transfer
-- page ranges; and, by the device the channel's offer named, the payload: integration-service
-- headers, hvsock pipe headers, NVSP messages and vstor packets with their SCSI command; and
-- a NIC's RNDIS messages from buffer-data records, each frame handed to Wireshark's Ethernet
-- dissector (so a guest's TCP shows as TCP).
-- Records a capture cut short (snaplen) are decoded as far as they go.

local vmbus = Proto("vmbus", "swift-vmbus capture record")

local kinds = {
    [1] = "substrate frame", [2] = "channel message", [3] = "ring packet", [4] = "doorbell",
    [5] = "channel open", [6] = "channel close", [7] = "drops", [8] = "buffer data",
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

-- Device classes (GUID as text) and how their channels' payloads are decoded.
local classes = {
    ["ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"] = { "synthetic SCSI controller", "storage" },
    ["32412632-86cb-44a2-9b5c-50d1417354f5"] = { "IDE (storvsc)", "storage" },
    ["2f9bcc4a-0069-4af3-b76b-6fd0be528cda"] = { "synthetic Fibre Channel", "storage" },
    ["f8615163-df3e-46c5-913f-f2d2f965ed0e"] = { "synthetic network adapter", "net" },
    ["57164f39-9115-4e78-ab55-382f3bd5422d"] = { "IC: heartbeat", "ic" },
    ["0e0b6031-5213-4934-818b-38d90ced39db"] = { "IC: shutdown", "ic" },
    ["9527e630-d0ae-497b-adce-e80ab0175caf"] = { "IC: time synchronisation", "ic" },
    ["a9a0f4e7-5a45-4d96-b827-8a841e8c03e6"] = { "IC: key-value pair exchange", "ic" },
    ["35fa2e29-ea23-4236-96ae-3a6ebacba440"] = { "IC: VSS", "ic" },
    ["34d14be3-dee4-41c8-9ae7-6b174977c192"] = { "IC: guest file copy", "ic" },
    ["9c54a7b3-4f5e-4d0d-8b8e-2f1c0a6e0a01"] = { "swift-vmbus echo", "raw" },
    ["9c54a7b3-4f5e-4d0d-8b8e-2f1c0a6e0a02"] = { "swift-vmbus discard", "raw" },
    ["44c4f61d-4444-4400-9d52-802e27ede19f"] = { "virtual PCI bus", "raw" },
    ["da0a7802-e377-4aac-8e77-0558eb1073f8"] = { "synthetic video", "raw" },
    ["f912ad6d-2b17-48ea-bd65-f927a61c7684"] = { "synthetic keyboard", "raw" },
    ["cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a"] = { "synthetic HID mouse", "raw" },
    ["525074dc-8985-46e2-8057-a307dc18a502"] = { "dynamic memory", "raw" },
}
local ic_types = {
    [0] = "NEGOTIATE", [1] = "HEARTBEAT", [2] = "KVP_EXCHANGE", [3] = "SHUTDOWN", [4] = "TIMESYNC", [5] = "VSS",
    [7] = "FCOPY",
}
local nvsp_types = {
    [1] = "INIT", [2] = "INIT_COMPLETE", [100] = "SEND_NDIS_VER", [101] = "SEND_RECV_BUF", [102] = "SEND_RECV_BUF_COMPLETE",
    [103] = "REVOKE_RECV_BUF", [104] = "SEND_SEND_BUF", [105] = "SEND_SEND_BUF_COMPLETE", [106] = "REVOKE_SEND_BUF",
    [107] = "SEND_RNDIS_PKT", [108] = "SEND_RNDIS_PKT_COMPLETE", [125] = "SEND_NDIS_CONFIG", [128] = "VF_ASSOCIATION",
    [129] = "SWITCH_DATA_PATH", [131] = "OID_QUERY_EX", [132] = "OID_QUERY_EX_COMPLETE", [133] = "SUBCHANNEL",
    [134] = "SEND_INDIRECTION_TABLE",
}
local rndis_types = {
    [0x1] = "PACKET", [0x2] = "INITIALIZE", [0x80000002] = "INITIALIZE_CMPLT", [0x3] = "HALT", [0x4] = "QUERY",
    [0x80000004] = "QUERY_CMPLT", [0x5] = "SET", [0x80000005] = "SET_CMPLT", [0x6] = "RESET",
    [0x80000006] = "RESET_CMPLT", [0x7] = "INDICATE_STATUS", [0x8] = "KEEPALIVE", [0x80000008] = "KEEPALIVE_CMPLT",
}
local vstor_ops = {
    [1] = "COMPLETE_IO", [2] = "REMOVE_DEVICE", [3] = "EXECUTE_SRB", [4] = "RESET_LUN", [5] = "RESET_ADAPTER",
    [6] = "RESET_BUS", [7] = "BEGIN_INITIALIZATION", [8] = "END_INITIALIZATION", [9] = "QUERY_PROTOCOL_VERSION",
    [10] = "QUERY_PROPERTIES", [11] = "ENUMERATE_BUS", [12] = "FCHBA_DATA", [13] = "CREATE_SUB_CHANNELS",
    [14] = "EVENT_NOTIFICATION",
}
local scsi_ops = {
    [0x00] = "TEST UNIT READY", [0x03] = "REQUEST SENSE", [0x08] = "READ(6)", [0x0A] = "WRITE(6)", [0x12] = "INQUIRY",
    [0x1A] = "MODE SENSE(6)", [0x25] = "READ CAPACITY(10)", [0x28] = "READ(10)", [0x2A] = "WRITE(10)",
    [0x35] = "SYNCHRONIZE CACHE(10)", [0x41] = "WRITE SAME(10)", [0x42] = "UNMAP", [0x5A] = "MODE SENSE(10)",
    [0x88] = "READ(16)", [0x8A] = "WRITE(16)", [0x91] = "SYNCHRONIZE CACHE(16)", [0x93] = "WRITE SAME(16)",
    [0x9E] = "SERVICE ACTION IN(16)", [0xA0] = "REPORT LUNS",
}
-- Channels by "connection:relid", learnt from the offers: { class name, payload kind }.
local channels = {}

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
    class_id = ProtoField.string("vmbus.offer.class", "Class GUID"),
    class_name = ProtoField.string("vmbus.offer.class_name", "Class"),
    instance_id = ProtoField.string("vmbus.offer.instance", "Instance GUID"),
    offer_flags = ProtoField.uint16("vmbus.offer.flags", "Offer flags", base.HEX),
    sub_index = ProtoField.uint16("vmbus.offer.sub_channel_index", "Sub-channel index"),
    msg_relid = ProtoField.uint32("vmbus.msg.relid", "Channel relid"),
    open_id = ProtoField.uint32("vmbus.msg.open_id", "Open id"),
    gpadl = ProtoField.uint32("vmbus.msg.gpadl", "GPADL handle"),
    target_vp = ProtoField.uint32("vmbus.msg.target_vp", "Target VP"),
    downstream = ProtoField.uint32("vmbus.msg.downstream_page_offset", "Host→guest ring page offset"),
    status = ProtoField.uint32("vmbus.msg.status", "Status", base.HEX),
    range_count = ProtoField.uint16("vmbus.msg.range_count", "Range count"),
    range_buflen = ProtoField.uint16("vmbus.msg.range_buflen", "Range bytes"),
    version_req = ProtoField.uint32("vmbus.msg.version", "Version", base.HEX),
    version_ok = ProtoField.bool("vmbus.msg.version_supported", "Version supported"),
    conn_id = ProtoField.uint32("vmbus.msg.connection_id", "Message connection id"),
    endpoint = ProtoField.string("vmbus.msg.endpoint", "Endpoint GUID"),
    service = ProtoField.string("vmbus.msg.service", "Service GUID"),
    device = ProtoField.string("vmbus.pkt.device", "Device"),
    range_bytes = ProtoField.uint32("vmbus.pkt.range.bytes", "Range byte count"),
    range_offset = ProtoField.uint32("vmbus.pkt.range.offset", "Range byte offset"),
    range_pfn = ProtoField.uint64("vmbus.pkt.range.pfn", "PFN", base.HEX),
    tp_set = ProtoField.uint16("vmbus.pkt.transfer_page_set", "Transfer page set"),
    pipe_type = ProtoField.uint32("vmbus.pipe.type", "Pipe packet type"),
    pipe_size = ProtoField.uint32("vmbus.pipe.size", "Pipe data size"),
    hvsock_data = ProtoField.bytes("vmbus.hvsock.data", "hvsock data"),
    ic_type = ProtoField.uint16("vmbus.ic.type", "IC message type", base.DEC, ic_types),
    ic_framework = ProtoField.string("vmbus.ic.framework_version", "Framework version"),
    ic_version = ProtoField.string("vmbus.ic.message_version", "Message version"),
    ic_size = ProtoField.uint16("vmbus.ic.size", "IC body size"),
    ic_status = ProtoField.uint32("vmbus.ic.status", "IC status", base.HEX),
    ic_flags = ProtoField.uint8("vmbus.ic.flags", "IC flags", base.HEX),
    nvsp_type = ProtoField.uint32("vmbus.nvsp.type", "NVSP message type", base.DEC, nvsp_types),
    vstor_op = ProtoField.uint32("vmbus.vstor.operation", "vstor operation", base.DEC, vstor_ops),
    vstor_status = ProtoField.uint32("vmbus.vstor.status", "vstor status", base.HEX),
    scsi_lun = ProtoField.uint8("vmbus.scsi.lun", "LUN"),
    scsi_status = ProtoField.uint8("vmbus.scsi.status", "SCSI status", base.HEX),
    srb_status = ProtoField.uint8("vmbus.scsi.srb_status", "SRB status", base.HEX),
    scsi_op = ProtoField.uint8("vmbus.scsi.opcode", "SCSI opcode", base.HEX, scsi_ops),
    scsi_lba = ProtoField.uint64("vmbus.scsi.lba", "LBA"),
    scsi_blocks = ProtoField.uint32("vmbus.scsi.blocks", "Blocks"),
    scsi_length = ProtoField.uint32("vmbus.scsi.transfer_length", "Data transfer length"),
    buffer_gpadl = ProtoField.uint32("vmbus.buffer.gpadl", "GPADL handle (0: offset is a GPA)"),
    buffer_offset = ProtoField.uint64("vmbus.buffer.offset", "Offset", base.HEX),
    rndis_type = ProtoField.uint32("vmbus.rndis.type", "RNDIS message type", base.HEX, rndis_types),
    rndis_length = ProtoField.uint32("vmbus.rndis.length", "RNDIS message length"),
    rndis_request = ProtoField.uint32("vmbus.rndis.request_id", "RNDIS request id"),
    rndis_oid = ProtoField.uint32("vmbus.rndis.oid", "OID", base.HEX),
    rndis_status = ProtoField.uint32("vmbus.rndis.status", "RNDIS status", base.HEX),
    rndis_data_offset = ProtoField.uint32("vmbus.rndis.data_offset", "Data offset"),
    rndis_data_length = ProtoField.uint32("vmbus.rndis.data_length", "Data length"),
    rndis_ppi_length = ProtoField.uint32("vmbus.rndis.ppi_length", "Per-packet info length"),
}
vmbus.fields = f

-- A GUID as text: three little-endian fields, then eight bytes as they are (04 §1).
local function guid(range)
    local b = range:bytes()
    return string.format("%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", range(0, 4):le_uint(), range(4, 2):le_uint(),
        range(6, 2):le_uint(), b:get_index(8), b:get_index(9), b:get_index(10), b:get_index(11), b:get_index(12),
        b:get_index(13), b:get_index(14), b:get_index(15))
end

-- Adds the little-endian u32 at `offset` of `data` as `field`, if the record holds it.
local function u32(tree, field, data, offset)
    if data:len() >= offset + 4 then
        tree:add_le(field, data(offset, 4))
        return data(offset, 4):le_uint()
    end
end

-- A channel message's fields (04 §3); returns text for the info column.
local function decode_message(t, data, tree, connection)
    local size = data:len()
    local text = ""
    if t == 1 and size >= 188 then -- OFFERCHANNEL
        local class = guid(data(8, 16))
        local known = classes[class]
        local flags = data(56, 2):le_uint()
        local relid = data(184, 4):le_uint()
        if bit.band(flags, 0x2000) ~= 0 then known = { "hvsock (service " .. class .. ")", "hvsock" } end
        tree:add(f.class_id, data(8, 16), class)
        tree:add(f.class_name, data(8, 16), known and known[1] or "unknown class")
        tree:add(f.instance_id, data(24, 16), guid(data(24, 16)))
        tree:add_le(f.offer_flags, data(56, 2))
        tree:add_le(f.sub_index, data(180, 2))
        tree:add_le(f.msg_relid, data(184, 4))
        channels[connection .. ":" .. relid] = known or { "unknown class " .. class, "raw" }
        text = " relid " .. relid .. " " .. (known and known[1] or class)
    elseif (t == 2 or t == 7 or t == 13) and size >= 12 then -- RESCIND, CLOSECHANNEL, RELID_RELEASED
        text = " relid " .. u32(tree, f.msg_relid, data, 8)
    elseif t == 5 and size >= 28 then -- OPENCHANNEL
        text = " relid " .. u32(tree, f.msg_relid, data, 8)
        u32(tree, f.open_id, data, 12)
        text = text .. " gpadl " .. u32(tree, f.gpadl, data, 16)
        u32(tree, f.target_vp, data, 20)
        u32(tree, f.downstream, data, 24)
    elseif t == 6 and size >= 20 then -- OPENCHANNEL_RESULT
        text = " relid " .. u32(tree, f.msg_relid, data, 8)
        u32(tree, f.open_id, data, 12)
        text = text .. string.format(" status 0x%x", u32(tree, f.status, data, 16))
    elseif t == 8 and size >= 20 then -- GPADL_HEADER
        text = " relid " .. u32(tree, f.msg_relid, data, 8) .. " gpadl " .. u32(tree, f.gpadl, data, 12)
        tree:add_le(f.range_buflen, data(16, 2))
        tree:add_le(f.range_count, data(18, 2))
    elseif t == 9 and size >= 16 then -- GPADL_BODY
        text = " gpadl " .. u32(tree, f.gpadl, data, 12)
    elseif (t == 10 or t == 11) and size >= 16 then -- GPADL_CREATED, GPADL_TEARDOWN
        text = " relid " .. u32(tree, f.msg_relid, data, 8) .. " gpadl " .. u32(tree, f.gpadl, data, 12)
        if t == 10 then u32(tree, f.status, data, 16) end
    elseif t == 12 and size >= 12 then -- GPADL_TORNDOWN
        text = " gpadl " .. u32(tree, f.gpadl, data, 8)
    elseif t == 14 and size >= 12 then -- INITIATE_CONTACT
        local v = u32(tree, f.version_req, data, 8)
        text = string.format(" version %d.%d", bit.rshift(v, 16), bit.band(v, 0xFFFF))
    elseif t == 15 and size >= 16 then -- VERSION_RESPONSE
        tree:add(f.version_ok, data(8, 1))
        u32(tree, f.conn_id, data, 12)
        text = data(8, 1):uint() ~= 0 and " accepted" or " refused"
    elseif t == 21 and size >= 40 then -- TL_CONNECT_REQUEST
        tree:add(f.endpoint, data(8, 16), guid(data(8, 16)))
        tree:add(f.service, data(24, 16), guid(data(24, 16)))
        text = " service " .. guid(data(24, 16))
    elseif t == 23 and size >= 44 then -- TL_CONNECT_RESULT
        tree:add(f.endpoint, data(8, 16), guid(data(8, 16)))
        tree:add(f.service, data(24, 16), guid(data(24, 16)))
        text = string.format(" status 0x%x", u32(tree, f.status, data, 40))
    end
    return text
end

local function version(range)
    return range(0, 2):le_uint() .. "." .. range(2, 2):le_uint()
end

-- The SCSI command of an EXECUTE_SRB (10 §4): its opcode, and LBA and blocks for reads and
-- writes.
local function decode_cdb(cdb, tree)
    local op = cdb(0, 1):uint()
    tree:add(f.scsi_op, cdb(0, 1))
    local name = scsi_ops[op] or string.format("opcode 0x%02x", op)
    if op == 0x28 or op == 0x2A then
        tree:add(f.scsi_lba, cdb(2, 4), UInt64(cdb(2, 4):uint()))
        tree:add(f.scsi_blocks, cdb(7, 2), cdb(7, 2):uint())
        name = name .. " lba " .. cdb(2, 4):uint() .. " blocks " .. cdb(7, 2):uint()
    elseif op == 0x88 or op == 0x8A then
        tree:add(f.scsi_lba, cdb(2, 8), cdb(2, 8):uint64())
        tree:add(f.scsi_blocks, cdb(10, 4), cdb(10, 4):uint())
        name = name .. " lba " .. tostring(cdb(2, 8):uint64()) .. " blocks " .. cdb(10, 4):uint()
    end
    return name
end

-- A ring packet's payload, by the device its channel belongs to.
local function decode_payload(kind, p, tree, outgoing_from_guest)
    local size = p:len()
    if kind == "ic" and size >= 28 then
        tree:add_le(f.pipe_type, p(0, 4))
        tree:add_le(f.pipe_size, p(4, 4))
        tree:add(f.ic_framework, p(8, 4), version(p(8, 4)))
        tree:add_le(f.ic_type, p(12, 2))
        tree:add(f.ic_version, p(14, 4), version(p(14, 4)))
        tree:add_le(f.ic_size, p(18, 2))
        tree:add_le(f.ic_status, p(20, 4))
        tree:add(f.ic_flags, p(25, 1))
        local t = p(12, 2):le_uint()
        local response = bit.band(p(25, 1):uint(), 0x4) ~= 0 -- ICMSGHDRFLAG_RESPONSE (06 §1.4)
        return " " .. (ic_types[t] or ("IC type " .. t)) .. (response and " response" or " request")
    elseif kind == "hvsock" and size >= 8 then
        tree:add_le(f.pipe_type, p(0, 4))
        tree:add_le(f.pipe_size, p(4, 4))
        local n = p(4, 4):le_uint()
        if size > 8 then tree:add(f.hvsock_data, p(8, math.min(n, size - 8))) end
        return n == 0 and " hvsock FIN" or (" hvsock " .. n .. " bytes")
    elseif kind == "net" and size >= 4 then
        tree:add_le(f.nvsp_type, p(0, 4))
        local t = p(0, 4):le_uint()
        return " NVSP " .. (nvsp_types[t] or t)
    elseif kind == "storage" and size >= 12 then
        tree:add_le(f.vstor_op, p(0, 4))
        tree:add_le(f.vstor_status, p(8, 4))
        local op = p(0, 4):le_uint()
        local text = " vstor " .. (vstor_ops[op] or op)
        if op == 3 and size >= 44 then
            tree:add(f.srb_status, p(14, 1))
            tree:add(f.scsi_status, p(15, 1))
            tree:add(f.scsi_lun, p(19, 1))
            tree:add_le(f.scsi_length, p(24, 4))
            text = text .. " lun " .. p(19, 1):uint() .. " " .. decode_cdb(p(28, 16), tree)
        end
        return text
    end
    return ""
end

-- A ring packet (03): descriptor, ranges, then the payload at offset8 × 8.
local function decode_packet(data, tree, connection, relid)
    local size = data:len()
    tree:add_le(f.pkt_type, data(0, 2))
    tree:add_le(f.pkt_offset8, data(2, 2))
    tree:add_le(f.pkt_len8, data(4, 2))
    tree:add_le(f.pkt_flags, data(6, 2))
    tree:add_le(f.pkt_tid, data(8, 8))
    local t = data(0, 2):le_uint()
    local offset = data(2, 2):le_uint() * 8
    local text = "packet " .. (packets[t] or string.format("0x%x", t)) .. " len " .. (data(4, 2):le_uint() * 8)
        .. " tid " .. tostring(data(8, 8):le_uint64())
    if t == 0x9 and size >= 24 then -- GPA direct: ranges of PFNs
        local count = data(20, 4):le_uint()
        local at = 24
        for _ = 1, count do
            if size < at + 8 then break end
            local bytes = data(at, 4):le_uint()
            local first = data(at + 4, 4):le_uint()
            local pages = math.floor((first % 4096 + bytes + 4095) / 4096)
            local range = tree:add(data(at, math.min(8 + pages * 8, size - at)), "GPA range: " .. bytes .. " bytes at offset " .. first)
            range:add_le(f.range_bytes, data(at, 4))
            range:add_le(f.range_offset, data(at + 4, 4))
            at = at + 8
            for _ = 1, pages do
                if size < at + 8 then break end
                range:add_le(f.range_pfn, data(at, 8))
                at = at + 8
            end
        end
    elseif t == 0x7 and size >= 24 then -- transfer pages: (count, offset) pairs in a set
        tree:add_le(f.tp_set, data(16, 2))
        local count = data(20, 4):le_uint()
        local at = 24
        for _ = 1, count do
            if size < at + 8 then break end
            local range = tree:add(data(at, 8), "Transfer page range: " .. data(at, 4):le_uint() .. " bytes at " .. data(at + 4, 4):le_uint())
            range:add_le(f.range_bytes, data(at, 4))
            range:add_le(f.range_offset, data(at + 4, 4))
            at = at + 8
        end
    end
    local channel = channels[connection .. ":" .. relid]
    if channel then
        tree:add(f.device, channel[1])
        if offset >= 16 and size > offset then
            text = text .. decode_payload(channel[2], data(offset), tree)
        end
    end
    return text
end

local eth = Dissector.get("eth_withoutfcs")

-- The RNDIS messages of a buffer-data record (11 §5): each message's header; a PACKET's
-- Ethernet frame goes to Wireshark's own Ethernet dissector, so the guest's traffic shows as
-- IP, TCP, ARP... Returns the text for the Info column.
local function decode_rndis(data, tree, pinfo)
    local text = ""
    local at = 0
    local size = data:len()
    while size >= at + 8 do
        local t = data(at, 4):le_uint()
        local length = data(at + 4, 4):le_uint()
        if length < 8 or at + length > size then length = size - at end
        local message = tree:add(data(at, length), "RNDIS " .. (rndis_types[t] or string.format("0x%x", t)))
        message:add_le(f.rndis_type, data(at, 4))
        message:add_le(f.rndis_length, data(at + 4, 4))
        text = text .. " RNDIS " .. (rndis_types[t] or string.format("0x%x", t))
        if t == 1 and length >= 44 then
            -- Offsets count from byte 8 of the message.
            local offset = data(at + 8, 4):le_uint()
            local frame = data(at + 12, 4):le_uint()
            message:add_le(f.rndis_data_offset, data(at + 8, 4))
            message:add_le(f.rndis_data_length, data(at + 12, 4))
            message:add_le(f.rndis_ppi_length, data(at + 32, 4))
            local start = at + 8 + offset
            if frame > 0 and start < size then
                if start + frame > size then frame = size - start end
                eth:call(data(start, frame):tvb(), pinfo, tree)
            end
        elseif (t == 4 or t == 5) and length >= 16 then
            message:add_le(f.rndis_request, data(at + 8, 4))
            message:add_le(f.rndis_oid, data(at + 12, 4))
        elseif t >= 0x80000000 and length >= 16 then
            message:add_le(f.rndis_request, data(at + 8, 4))
            message:add_le(f.rndis_status, data(at + 12, 4))
        end
        at = at + length
    end
    return text
end

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
    local connection = buffer(8, 4):le_uint()
    if kind == 2 and size >= 4 then
        local t = data(0, 4):le_uint()
        root:add_le(f.msg_type, data(0, 4))
        root:add(f.msg_name, data(0, 4), messages[t] or ("UNKNOWN(" .. t .. ")"))
        info = (messages[t] or ("message " .. t)) .. decode_message(t, data, root, connection)
    elseif kind == 3 and size >= 16 then
        info = decode_packet(data, root, connection, relid)
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
    local handed_on = false
    if kind == 8 and size >= 16 then
        root:add_le(f.buffer_gpadl, data(0, 4))
        root:add_le(f.buffer_offset, data(8, 8))
        local channel = channels[connection .. ":" .. relid]
        if channel then root:add(f.device, channel[1]) end
        if size > 16 and (channel == nil or channel[2] == "net") then
            info = "buffer" .. decode_rndis(data(16), root, pinfo)
            handed_on = true
        end
    end
    if data then root:add(f.data, data) end
    if handed_on then
        -- The Ethernet dissector named the frame in the Info column; say where it travelled.
        local protocol = tostring(pinfo.cols.protocol)
        if protocol ~= "VMBus" then
            pinfo.cols.protocol = "VMBus/" .. protocol
            pinfo.cols.info:prepend(direction .. " relid " .. relid .. " " .. info .. ": ")
            return buffer:len()
        end
    end
    pinfo.cols.info = direction .. " relid " .. relid .. " " .. info
    return buffer:len()
end

DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, vmbus)
