import ArgumentParser
import KujiraTensor

/// The `kujira` command-line tool.
@main
struct Kujira: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kujira",
        abstract: "DeepSeek-style language models in pure Swift.",
        discussion: """
            Exit status: 0 on success; 1 when a command fails (a bad model file, an unsupported model type, a network
            error: one line on stderr, naming the file or field); 64 for invalid arguments (usage error); Ctrl-C ends a
            command as the shell reports it (130), except `serve`, which shuts down gracefully and exits 0.
            Shell completion: `kujira --generate-completion-script bash|zsh|fish`.
            """,
        version: kujiraVersion,
        subcommands: [
            GenerateCommand.self,
            LogitsCommand.self,
            InspectCommand.self,
            InitCommand.self,
            BenchCommand.self,
            TokenizeCommand.self,
            TemplateCommand.self,
            RunCommand.self,
            ChatCommand.self,
            ServeCommand.self,
            BenchKernelsCommand.self,
            TrainStepCommand.self,
            TrainCommand.self, SFTCommand.self, TrainMTPCommand.self, EvalChatCommand.self, MergeCommand.self,
            EvalCommand.self,
            ExportCommand.self,
            ConvertCommand.self,
            GRPOCommand.self,
            DistillCommand.self,
            PullCommand.self,
            ListCommand.self,
            RemoveCommand.self,
        ]
    )

    /// Sets the process up before any other thread allocates (one malloc arena: `TrainingMemory.useOneArena`), then
    /// parses the arguments and runs the command.
    static func main() async {
        TrainingMemory.useOneArena()
        await main(nil)
    }
}
