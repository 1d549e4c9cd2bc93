/// An ordered BSON document. Field order is kept exactly as received, as MongoDB does.
///
/// Lookup is linear: documents are small and ordered, and a dictionary would double the memory of
/// every document in flight.
public struct BSONDocument: Sendable, Hashable, ExpressibleByDictionaryLiteral, RandomAccessCollection {
    /// One field.
    public struct Element: Sendable, Hashable {
        /// The field name.
        public var key: String
        /// The field value.
        public var value: BSONValue

        /// Creates a field.
        public init(key: String, value: BSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The fields in order.
    public private(set) var elements: [Element]

    /// Creates an empty document.
    public init() { elements = [] }

    /// Creates a document from fields in order.
    public init(elements: [Element]) { self.elements = elements }

    /// Creates a document from key/value pairs in order.
    public init(_ pairs: [(String, BSONValue)]) { elements = pairs.map { Element(key: $0.0, value: $0.1) } }

    public init(dictionaryLiteral pairs: (String, BSONValue)...) { self.init(pairs) }

    public var startIndex: Int { elements.startIndex }
    public var endIndex: Int { elements.endIndex }
    public subscript(position: Int) -> Element { elements[position] }

    /// The field names in order.
    public var keys: [String] { elements.map(\.key) }

    /// The value of `key`, or `nil` when the field is missing. Setting `nil` removes the field;
    /// setting a new key appends it.
    public subscript(key: String) -> BSONValue? {
        get {
            for element in elements where element.key == key { return element.value }
            return nil
        }
        set {
            if let index = elements.firstIndex(where: { $0.key == key }) {
                if let newValue {
                    elements[index].value = newValue
                } else {
                    elements.remove(at: index)
                }
            } else if let newValue {
                elements.append(Element(key: key, value: newValue))
            }
        }
    }

    /// Appends a field without checking for an existing one (the caller knows it is new).
    public mutating func append(_ key: String, _ value: BSONValue) {
        elements.append(Element(key: key, value: value))
    }

    /// Inserts a field at the front (used to put `_id` first, as MongoDB stores it).
    public mutating func prepend(_ key: String, _ value: BSONValue) {
        elements.insert(Element(key: key, value: value), at: 0)
    }

    /// Removes a field, returning its old value.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> BSONValue? {
        guard let index = elements.firstIndex(where: { $0.key == key }) else { return nil }
        return elements.remove(at: index).value
    }

    /// Whether `key` is present.
    public func contains(key: String) -> Bool { elements.contains { $0.key == key } }

    /// The first field's name (a command's name in a command document).
    public var firstKey: String? { elements.first?.key }
}
