/// Placeholder namespace; the tokenizer issue fills this target.
public enum KujiraTokenizerInfo {
    public static let name = "KujiraTokenizer"
}
