import ArgumentParser

@main
struct StratosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stratosdb",
        abstract: "StratosDB: a document database of user-owned encrypted spaces, spoken to over the MongoDB wire protocol.",
        version: "0.1.0")
}
