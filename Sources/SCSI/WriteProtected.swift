/// Commands that would write: every one answers 07/27/00 DATA PROTECT, WRITE PROTECTED (SBC-3
/// 4.11, MMC-6 4.1.x) once a medium is present (02/3A/0x before that). SYNCHRONIZE CACHE has
/// nothing to flush and answers GOOD.
enum WriteProtectedCommands {
    /// (opcode, CDB length, name).
    static let writers: [(UInt8, Int, String)] = [
        (0x04, 6, "FORMAT UNIT"),
        (0x07, 6, "REASSIGN BLOCKS"),
        (0x0A, 6, "WRITE(6)"),
        (0x2A, 10, "WRITE(10)"),
        (0x2E, 10, "WRITE AND VERIFY(10)"),
        (0x3B, 10, "WRITE BUFFER"),
        (0x3F, 10, "WRITE LONG(10)"),
        (0x41, 10, "WRITE SAME(10)"),
        (0x42, 10, "UNMAP"),
        (0x53, 10, "RESERVE TRACK"),
        (0x54, 10, "SEND OPC INFORMATION"),
        (0x58, 10, "REPAIR TRACK"),
        (0x5B, 10, "CLOSE TRACK/SESSION"),
        (0x5D, 10, "SEND CUE SHEET"),
        (0x89, 16, "COMPARE AND WRITE"),
        (0x8A, 16, "WRITE(16)"),
        (0x8E, 16, "WRITE AND VERIFY(16)"),
        (0x93, 16, "WRITE SAME(16)"),
        (0xA1, 12, "BLANK"),
        (0xAA, 12, "WRITE(12)"),
        (0xAE, 12, "WRITE AND VERIFY(12)"),
        (0xBF, 12, "SEND DVD STRUCTURE"),
    ]

    static let commands: [Command] = writers.map { op, length, name in
        var usage = [UInt8](repeating: 0, count: length)
        usage[0] = op
        return Command(op, name, usage: usage, needsMedium: true) { _, _ throws(SenseError) in
            throw SenseError(.writeProtected)
        }
    } + [
        Command(0x35, "SYNCHRONIZE CACHE(10)", usage: [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], needsMedium: true) {
            _, _ throws(SenseError) in .none
        },
        Command(0x91, "SYNCHRONIZE CACHE(16)", usage: [0x91] + [UInt8](repeating: 0, count: 15), needsMedium: true) {
            _, _ throws(SenseError) in .none
        },
    ]

    /// True for the opcodes answered 07/27/00.
    static func isWriteProtected(_ opcode: UInt8) -> Bool {
        writers.contains { $0.0 == opcode }
    }
}
