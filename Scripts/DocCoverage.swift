// Lists the public symbols declared in this package's sources that have no doc comment, from the
// symbol graphs `swift package generate-documentation` extracts (Scripts/check-docs.sh runs it).
//
//     swift Scripts/DocCoverage.swift [--allowed FILE] [--list] SYMBOL_GRAPH_DIR...
//
// A symbol counts as documented when its symbol graph entry carries a doc comment, its own or
// one inherited from the protocol requirement it implements (`description`, `==`,
// `HostDevice.opened`, …). Symbols the compiler synthesises have no source location and are
// not counted.
//
// FILE lists symbols that may stay undocumented for now, one `Module path.to.symbol` a line
// (`#` starts a comment). Exit 1 when an undocumented symbol is not in it; entries that are
// documented now are reported, to be removed. `--list` prints every undocumented symbol.
import Foundation

var list = false
var allowedFile: String?
var directories: [String] = []
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--list": list = true
    case "--allowed": allowedFile = arguments.popFirst()
    default: directories.append(argument)
    }
}

struct Missing: Hashable {
    var module: String
    var path: String
    var file: String
    var line: Int
    var kind: String
    var key: String { "\(self.module) \(self.path)" }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

var allowed = Set<String>()
if let allowedFile {
    guard let text = try? String(contentsOfFile: allowedFile, encoding: .utf8) else { fail("cannot read \(allowedFile)") }
    for line in text.split(separator: "\n") {
        let entry = line.prefix { $0 != "#" }.trimmingCharacters(in: .whitespaces)
        if !entry.isEmpty { allowed.insert(entry) }
    }
}

let root = FileManager.default.currentDirectoryPath + "/"
var symbolCounts: [String: Int] = [:]
var missing: [Missing] = []
for directory in directories {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for file in files.sorted() where file.hasSuffix(".symbols.json") {
        guard let data = FileManager.default.contents(atPath: directory + "/" + file),
            let graph = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let symbols = graph["symbols"] as? [[String: Any]]
        else { fail("cannot read \(directory)/\(file)") }
        // `VMBusDevices@VMBusWire.symbols.json` holds VMBusDevices' extensions of VMBusWire types.
        let module = String(file.prefix { $0 != "@" && $0 != "." })
        for symbol in symbols {
            guard let location = symbol["location"] as? [String: Any], let uri = location["uri"] as? String,
                let path = URL(string: uri)?.path, path.hasPrefix(root + "Sources/")
            else { continue }
            symbolCounts[module, default: 0] += 1
            let lines = ((symbol["docComment"] as? [String: Any])?["lines"] as? [[String: Any]]) ?? []
            let text = lines.compactMap { $0["text"] as? String }.joined().trimmingCharacters(in: .whitespaces)
            guard text.isEmpty else { continue }
            missing.append(
                Missing(
                    module: module, path: (symbol["pathComponents"] as? [String] ?? []).joined(separator: "."),
                    file: String(path.dropFirst(root.count)),
                    line: ((location["position"] as? [String: Any])?["line"] as? Int ?? 0) + 1,
                    kind: ((symbol["kind"] as? [String: Any])?["identifier"] as? String ?? "?")
                        .replacingOccurrences(of: "swift.", with: "")))
        }
    }
}
missing.sort { ($0.file, $0.line) < ($1.file, $1.line) }

for module in symbolCounts.keys.sorted() {
    let undocumented = missing.filter { $0.module == module }
    let waiting = undocumented.filter { allowed.contains($0.key) }.count
    print("\(module): \(undocumented.count) of \(symbolCounts[module] ?? 0) public symbols undocumented (\(waiting) of them allowed)")
}
if list {
    for symbol in missing { print("  \(symbol.file):\(symbol.line): \(symbol.kind) \(symbol.key)") }
}
let missingKeys = Set(missing.map(\.key))
let stale = allowed.subtracting(missingKeys).sorted()
if !stale.isEmpty {
    print("documented now (remove from the allowed list):")
    for key in stale { print("  \(key)") }
}
let new = missing.filter { !allowed.contains($0.key) }
if !new.isEmpty {
    print("error: \(new.count) public symbols have no doc comment:")
    for symbol in new { print("  \(symbol.file):\(symbol.line): \(symbol.kind) \(symbol.key)") }
    exit(1)
}
