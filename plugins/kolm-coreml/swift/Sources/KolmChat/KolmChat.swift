// A kolm Core ML export on iOS 18 / macOS 15: the stateful model kolm-coreml writes (inputs
// `inputIds` 1 x n int32 and `causalMask` 1 x 1 x n x (past + n) float16; states `keyCache`,
// `valueCache`; output `logits` 1 x n x vocab), the tokenizer files beside it, greedy decoding.
import CoreML
import Foundation
import Tokenizers

@available(iOS 18.0, macOS 15.0, *)
public final class KolmChat {
    let model: MLModel
    let tokenizer: Tokenizer

    /// `folder` holds the export as bundled in the app: `model.mlmodelc` (Xcode compiles
    /// `model.mlpackage`), `tokenizer.json`, `tokenizer_config.json` and `config.json`.
    public init(folder: URL, computeUnits: MLComputeUnits = .cpuAndGPU) async throws {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        model = try MLModel(contentsOf: folder.appendingPathComponent("model.mlmodelc"), configuration: configuration)
        tokenizer = try await AutoTokenizer.from(modelFolder: folder)
    }

    /// The reply to one user message, in the model's chat template, streamed piece by piece.
    public func reply(to message: String, maxTokens: Int = 128) -> AsyncThrowingStream<String, Error> {
        AsyncThrowingStream { continuation in
            Task {
                do {
                    let prompt = try tokenizer.applyChatTemplate(messages: [["role": "user", "content": message]])
                    var made: [Int] = []
                    var shown = ""
                    for try await token in tokens(after: prompt, maxTokens: maxTokens) {
                        made.append(token)
                        let text = tokenizer.decode(tokens: made, skipSpecialTokens: true)
                        continuation.yield(String(text.dropFirst(shown.count)))
                        shown = text
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }

    /// Greedy tokens after `prompt`: one prediction over the prompt, then one per token, the KV cache
    /// kept in the model's state between predictions.
    func tokens(after prompt: [Int], maxTokens: Int) -> AsyncThrowingStream<Int, Error> {
        AsyncThrowingStream { continuation in
            do {
                let state = model.makeState()
                var next = try argmaxOfLast(try predict(prompt, past: 0, state: state))
                var past = prompt.count
                for _ in 0..<maxTokens {
                    if next == tokenizer.eosTokenId { break }
                    continuation.yield(next)
                    next = try argmaxOfLast(try predict([next], past: past, state: state))
                    past += 1
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }

    func predict(_ tokens: [Int], past: Int, state: MLState) throws -> MLMultiArray {
        let n = tokens.count
        let ids = try MLMultiArray(shape: [1, NSNumber(value: n)], dataType: .int32)
        for (i, token) in tokens.enumerated() { ids[i] = NSNumber(value: token) }
        // 0 where position i may attend to j (j <= past + i), -inf where it may not
        let mask = try MLMultiArray(shape: [1, 1, NSNumber(value: n), NSNumber(value: past + n)], dataType: .float16)
        for i in 0..<n {
            for j in 0..<(past + n) {
                mask[i * (past + n) + j] = NSNumber(value: j <= past + i ? 0 : -Float.infinity)
            }
        }
        let inputs = try MLDictionaryFeatureProvider(dictionary: ["inputIds": ids, "causalMask": mask])
        let output = try model.prediction(from: inputs, using: state)
        guard let logits = output.featureValue(for: "logits")?.multiArrayValue else {
            throw NSError(domain: "KolmChat", code: 1, userInfo: [NSLocalizedDescriptionKey: "no logits output"])
        }
        return logits
    }

    func argmaxOfLast(_ logits: MLMultiArray) throws -> Int {
        let vocab = logits.shape[2].intValue
        let last = (logits.shape[1].intValue - 1) * vocab
        var best = 0
        var bestValue = -Float.infinity
        for v in 0..<vocab {
            let value = logits[last + v].floatValue
            if value > bestValue { best = v; bestValue = value }
        }
        return best
    }
}
