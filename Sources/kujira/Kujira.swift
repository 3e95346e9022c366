import ArgumentParser

/// The `kujira` command-line tool.
@main
struct Kujira: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kujira",
        abstract: "DeepSeek-style language models in pure Swift.",
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
            TrainCommand.self,
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
}
