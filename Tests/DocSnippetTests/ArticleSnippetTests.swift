// Keeps the articles' code honest: every ```swift block of every DocC article in Sources/ must
// appear, line for line, in this test target's sources, where it is compiled and run; every
// ```c block must appear in Tests/doc-c-guest/guest.c, which LocalSnippetTests builds and runs.
import Foundation
import Testing

@Suite struct ArticleSnippetTests {
    /// The package root, found from this file's path (Tests/DocSnippetTests/…).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Lines with their indentation and trailing blanks removed, blank lines dropped: a block
    /// quoted inside a function body matches the same lines at the top level of an article.
    static func normalized(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    /// The code blocks of a Markdown file in `language`.
    static func blocks(_ markdown: String, language: String = "swift") -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```" + language {
                current = []
            } else if let lines = current, trimmed == "```" {
                blocks.append(lines.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// Every article of every catalog (the landing pages included).
    static func articles() throws -> [URL] {
        let sources = Self.root.appendingPathComponent("Sources")
        var found: [URL] = []
        for target in try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted() {
            let catalog = sources.appendingPathComponent(target).appendingPathComponent("Docs.docc")
            guard let files = FileManager.default.enumerator(atPath: catalog.path) else { continue }
            for case let file as String in files where file.hasSuffix(".md") {
                found.append(catalog.appendingPathComponent(file))
            }
        }
        return found
    }

    /// The normalized lines of the files in `directory` whose names end with `suffix`.
    static func sources(in directory: String, suffix: String) throws -> [[String]] {
        let url = Self.root.appendingPathComponent(directory)
        return try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(suffix) }.map {
            Self.normalized(try String(contentsOf: url.appendingPathComponent($0), encoding: .utf8))
        }
    }

    /// Whether `block`'s lines appear, consecutively, in one of `sources`.
    static func quoted(_ block: String, in sources: [[String]]) -> Bool {
        let lines = Self.normalized(block)
        return sources.contains { source in
            source.count >= lines.count
                && (0...(source.count - lines.count)).contains { Array(source[$0..<($0 + lines.count)]) == lines }
        }
    }

    @Test func everyCodeBlockOfTheArticlesIsInTheTestedSources() throws {
        let swiftSources = try Self.sources(in: "Tests/DocSnippetTests", suffix: ".swift")
        let cSources = try Self.sources(in: "Tests/doc-c-guest", suffix: ".c")
        let articles = try Self.articles()
        #expect(articles.count >= 12, "8 landing pages and 4 articles, found \(articles.count)")
        var checked = (swift: 0, c: 0)
        for article in articles {
            let markdown = try String(contentsOf: article, encoding: .utf8)
            // Through a local, so that a failure prints the block rather than every source.
            for block in Self.blocks(markdown) {
                let quoted = Self.quoted(block, in: swiftSources)
                #expect(quoted, "\(article.lastPathComponent): not in Tests/DocSnippetTests:\n\(block)")
                checked.swift += 1
            }
            for block in Self.blocks(markdown, language: "c") {
                let quoted = Self.quoted(block, in: cSources)
                #expect(quoted, "\(article.lastPathComponent): not in Tests/doc-c-guest:\n\(block)")
                checked.c += 1
            }
        }
        #expect(checked.swift >= 7 && checked.c >= 5, "found only \(checked) blocks in the articles")
    }

    @Test func theBlockFinderSeesOnlyTheLanguageAsked() {
        let markdown = "text\n```swift\nlet a = 1\n\n    let b = 2\n```\n```sh\nls\n```\n```c\nint x;\n```\n"
        #expect(Self.blocks(markdown) == ["let a = 1\n\n    let b = 2"])
        #expect(Self.blocks(markdown, language: "c") == ["int x;"])
        #expect(Self.quoted("let b = 2", in: [["let a = 1", "let b = 2"]]))
        #expect(!Self.quoted("let a = 1\nlet c = 3", in: [["let a = 1", "let b = 2"]]))
        #expect(Self.normalized("  let a = 1\n\n    let b = 2  ") == ["let a = 1", "let b = 2"])
    }
}
