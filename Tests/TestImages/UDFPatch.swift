import Foundation

/// Changes made to images from `UDFImageBuilder` with `metadataPartition = false` (plain
/// file entries in a physical partition, so partition block p is disc sector 257 + p), for
/// the hostile-image tests of the reader and of the mount.
package enum UDFPatch {
    /// The disc sector where the builder's physical partition starts.
    package static let partitionStart = 257

    /// The file identifier descriptor (tag 257) naming `name` in 8-bit CS0, and the partition
    /// block of the ICB it points to; nil when there is none.
    package static func fileIdentifier(_ bytes: [UInt8], named name: String) -> (offset: Int, icb: Int)? {
        let found = ISOPatch.find(bytes, [8] + Array(name.utf8)).map { $0 - 38 }
            .filter { $0 >= 0 && bytes[$0] == 1 && bytes[$0 + 1] == 1 }
        guard let offset = found.first else { return nil }
        return (offset, Int(bytes.littleEndian32(at: offset + 24)))
    }

    /// Replaces the entry at partition block `block` with an indirect entry (tag 259, ICB
    /// strategy 4) pointing at `target`.
    package static func makeIndirect(_ bytes: inout [UInt8], at block: Int, to target: Int) {
        var d = [UInt8](repeating: 0, count: 52)
        UDFImageBuilder.put16(&d, 20, 4)
        d.replaceSubrange(36..<52, with: UDFImageBuilder.longAD(length: 2048, block: target, partition: 0))
        let sector = (partitionStart + block) * 2048
        bytes.replaceSubrange(sector..<(sector + 2048), with: UDFImageBuilder.tag(259, location: block, d) + [UInt8](repeating: 0, count: 2048 - 52))
    }
}
