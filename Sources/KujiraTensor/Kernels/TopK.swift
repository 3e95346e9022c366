/// The k largest values of a row, choosing among ties exactly as PyTorch's CPU `torch.topk` does — which is what
/// the reference implementations run. Lightning indexers (DeepSeek-V3.2, V4) score with a ReLU, so many keys tie at
/// exactly 0 and which of them are kept changes the attention output: the goldens pin that choice.
///
/// ATen's CPU kernel (`topk_impl_loop`) pairs each value with its index, then runs libstdc++'s `std::partial_sort`
/// when k · 64 ≤ n and `std::nth_element` otherwise, comparing values only (`a > b`). This is our own transcription of
/// those two algorithms (introselect with median-of-three pivots and heap select, insertion sort below 4 elements);
/// `scripts/make-topk-goldens.py` checks it against torch on tie-heavy rows (Tests/Fixtures/topk).
public enum TorchTopK {
    /// Writes the indices of the `k` largest of `values` (n of them, n ≥ k ≥ 1) into `indices`, ascending.
    /// `scratchValues` / `scratchIndices` hold n entries each.
    public static func select(_ values: UnsafePointer<Float>, count n: Int, k: Int, into indices: UnsafeMutablePointer<Int>,
                              scratchValues v: UnsafeMutablePointer<Float>, scratchIndices ix: UnsafeMutablePointer<Int>) {
        precondition(k >= 1 && k <= n, "top-k needs 1 ≤ k ≤ n")
        for i in 0..<n { v[i] = values[i]; ix[i] = i }
        let queue = Queue(values: v, indices: ix)
        if k * 64 <= n {
            queue.heapSelect(0, k, n)
        } else {
            queue.introselect(0, k - 1, n, depth: 2 * (Int.bitWidth - 1 - n.leadingZeroBitCount))
        }
        for j in 0..<k { indices[j] = ix[j] }
        var chosen = UnsafeMutableBufferPointer(start: indices, count: k)
        chosen.sort()
    }

    /// (value, index) pairs in two parallel arrays, with libstdc++'s selection algorithms over them.
    struct Queue {
        let values: UnsafeMutablePointer<Float>
        let indices: UnsafeMutablePointer<Int>

        /// The comparator: "a comes before b" when a is larger (NaN first, as ATen's).
        @inline(__always) func before(_ a: Int, _ b: Int) -> Bool { before(values[a], values[b]) }
        @inline(__always) func before(_ a: Float, _ b: Float) -> Bool { (a.isNaN && !b.isNaN) || a > b }
        @inline(__always) func swap(_ a: Int, _ b: Int) {
            let v = values[a], i = indices[a]
            values[a] = values[b]; indices[a] = indices[b]
            values[b] = v; indices[b] = i
        }
        @inline(__always) func move(_ from: Int, to: Int) { values[to] = values[from]; indices[to] = indices[from] }

        func introselect(_ first: Int, _ nth: Int, _ last: Int, depth: Int) {
            var first = first, last = last, depth = depth
            while last - first > 3 {
                if depth == 0 {
                    heapSelect(first, nth + 1, last)
                    swap(first, nth)
                    return
                }
                depth -= 1
                let cut = partitionAroundPivot(first, last)
                if cut <= nth { first = cut } else { last = cut }
            }
            insertionSort(first, last)
        }

        /// Median of (first+1, mid, last−1) moved to `first`, then an unguarded partition of (first+1, last).
        func partitionAroundPivot(_ first: Int, _ last: Int) -> Int {
            let a = first + 1, b = first + (last - first) / 2, c = last - 1
            if before(a, b) {
                if before(b, c) { swap(first, b) } else if before(a, c) { swap(first, c) } else { swap(first, a) }
            } else if before(a, c) {
                swap(first, a)
            } else if before(b, c) {
                swap(first, c)
            } else {
                swap(first, b)
            }
            var low = first + 1, high = last
            while true {
                while before(low, first) { low += 1 }
                high -= 1
                while before(first, high) { high -= 1 }
                if !(low < high) { return low }
                swap(low, high)
                low += 1
            }
        }

        func insertionSort(_ first: Int, _ last: Int) {
            guard first != last else { return }
            var i = first + 1
            while i < last {
                let value = values[i], index = indices[i]
                if before(value, values[first]) {
                    var j = i
                    while j > first { move(j - 1, to: j); j -= 1 }
                    values[first] = value; indices[first] = index
                } else {
                    var hole = i, next = i - 1
                    while before(value, values[next]) { move(next, to: hole); hole = next; next -= 1 }
                    values[hole] = value; indices[hole] = index
                }
                i += 1
            }
        }

        /// The `middle − first` best of [first, last) gathered in a heap at [first, middle).
        func heapSelect(_ first: Int, _ middle: Int, _ last: Int) {
            makeHeap(first, middle)
            for i in middle..<last where before(i, first) {
                let value = values[i], index = indices[i]
                move(first, to: i)
                adjustHeap(first, 0, middle - first, value, index)
            }
        }

        func makeHeap(_ first: Int, _ last: Int) {
            let length = last - first
            guard length >= 2 else { return }
            var parent = (length - 2) / 2
            while true {
                adjustHeap(first, parent, length, values[first + parent], indices[first + parent])
                if parent == 0 { return }
                parent -= 1
            }
        }

        func adjustHeap(_ first: Int, _ start: Int, _ length: Int, _ value: Float, _ index: Int) {
            let top = start
            var hole = start, child = start
            while child < (length - 1) / 2 {
                child = 2 * (child + 1)
                if before(first + child, first + child - 1) { child -= 1 }
                move(first + child, to: first + hole)
                hole = child
            }
            if length & 1 == 0 && child == (length - 2) / 2 {
                child = 2 * (child + 1)
                move(first + child - 1, to: first + hole)
                hole = child - 1
            }
            var parent = (hole - 1) / 2
            while hole > top && before(values[first + parent], value) {
                move(first + parent, to: first + hole)
                hole = parent
                parent = (hole - 1) / 2
            }
            values[first + hole] = value; indices[first + hole] = index
        }
    }

    /// The plain statement of what `select` returns when there are no ties: the indices of the k largest values,
    /// ascending (ties broken by lower index). Tests compare the two on tie-free rows.
    public static func reference(_ values: [Float], k: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }.prefix(k)).sorted()
    }
}
