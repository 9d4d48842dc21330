import VMBusMemory
import ArgumentParser
import Logging

/// `--log-level`, shared by the commands that run a bus.
struct LogOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Log level on standard error: trace, debug, info, notice, warning, error, critical.",
        transform: { text in
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ValidationError("unknown log level '\(text)'")
            }
            return level
        })
    var logLevel: Logger.Level?

    /// Sets up logging once for the process and returns a logger with `label`.
    func logger(_ label: String, default level: Logger.Level) -> Logger {
        let chosen = self.logLevel ?? level
        loggingBootstrap.withLock { done in
            if !done {
                LoggingSystem.bootstrap { label in
                    var handler = StreamLogHandler.standardError(label: label)
                    handler.logLevel = chosen
                    return handler
                }
                done = true
            }
        }
        var logger = Logger(label: label)
        logger.logLevel = chosen
        return logger
    }
}

let loggingBootstrap = Locked(false)
