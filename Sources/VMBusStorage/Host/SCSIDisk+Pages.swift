import VMBusWire

extension SCSIDisk {
    /// Standard INQUIRY data: OpenVMM's 104-byte disk answer (10 §6.3).
    func inquiryData() -> [UInt8] {
        InquiryData.disk(vendor: self.identity.vendor, product: self.identity.product, revision: self.identity.revision).encode()
    }

    /// The VPD pages this disk answers, in ascending order (VPD 0x00 lists them).
    var vitalProductPages: [VPDPageCode] {
        var pages: [VPDPageCode] = [.supportedPages, .unitSerialNumber, .deviceIdentification, .blockLimits, .blockDeviceCharacteristics]
        if self.unmapSupported { pages.append(.logicalBlockProvisioning) }
        return pages
    }

    /// One VPD page, or `nil` for a page this disk does not have (⇒ 5/24).
    func vitalProductData(_ code: VPDPageCode) -> [UInt8]? {
        guard self.vitalProductPages.contains(code) else { return nil }
        switch code {
        case .supportedPages:
            return VPDSupportedPages(pages: self.vitalProductPages).page.encode()
        case .unitSerialNumber:
            return VPDUnitSerialNumber(serial: Array(self.identity.serial.utf8)).page.encode()
        case .deviceIdentification:
            let designators: [VPDDeviceIdentification.Designator] = [
                .naa(self.identity.naa),
                .t10VendorID(vendor: self.identity.vendor, id: Array(self.identity.serial.utf8)),
            ]
            return VPDDeviceIdentification(designators: designators).page.encode()
        case .blockLimits:
            var limits = VPDBlockLimits()
            let sector = self.backend.sectorSize
            limits.maximumTransferLength = UInt32(clamping: self.maximumTransferBytes / sector)
            limits.optimalTransferLengthGranularity = UInt16(clamping: max(1, 4096 / sector))
            if self.unmapSupported {
                // Linux discards only when both counts are non-zero (10 §6.1).
                limits.maximumUnmapLBACount = 0xFFFF_FFFF
                limits.maximumUnmapBlockDescriptorCount = UInt32(Self.maximumUnmapDescriptors)
                limits.optimalUnmapGranularity = UInt32(max(1, 4096 / sector))
            }
            return limits.page.encode()
        case .blockDeviceCharacteristics:
            return VPDBlockDeviceCharacteristics().page.encode()
        case .logicalBlockProvisioning:
            var provisioning = VPDLogicalBlockProvisioning(unmapSupported: true)
            // LBPRZ (bits 2–4 = 1): every backend reads zeros after a discard.
            provisioning.flags |= 0x04
            return provisioning.page.encode()
        default:
            return nil
        }
    }

    /// MODE SENSE (6/10): the caching page (WCE: writes need SYNCHRONIZE CACHE to be durable)
    /// alone or as "all pages"; the header's WP and DPOFUA bits. Saved values (PC 3) and other
    /// pages ⇒ `nil` (5/24), as OpenVMM.
    func modeSense(_ request: SCSIModeSense) -> [UInt8]? {
        guard request.pageControl != 3, request.subpageCode == 0 || request.subpageCode == 0xFF,
            request.pageCode == SCSIModeSense.cachingPage || request.pageCode == SCSIModeSense.allPages
        else { return nil }
        let deviceSpecific = (self.backend.isReadOnly ? ModeParameterHeader.writeProtectFlag : 0) | ModeParameterHeader.dpoFUAFlag
        // PC 1 asks which fields are changeable: none.
        let caching = request.pageControl == 1 ? CachingModePage(writeCacheEnabled: false) : CachingModePage(writeCacheEnabled: true)
        return ModeParameterList(form: request.form, deviceSpecific: deviceSpecific, pages: [caching.page]).encode()
    }
}
