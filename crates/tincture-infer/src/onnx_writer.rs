//! A small writer of ONNX graphs (protobuf `ModelProto`), enough to build
//! float graphs from standard operators.
//!
//! Tincture's tests use it to make models with the exact signatures of the
//! colorizers archivists bring (siggraph17, eccv16, DeOldify, DDColor), whose
//! real weights cannot ship with the project, and to make deliberately broken
//! models. It writes only what ONNX Runtime needs: IR version, opset, nodes,
//! float initializers and typed inputs and outputs.

/// A tensor dimension: fixed, or named (dynamic).
#[derive(Clone, Debug)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size, any value at run time.
    Named(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Dim::Named(v.to_owned())
    }
}

/// A node attribute value.
#[derive(Clone, Debug)]
pub enum Attr {
    /// One integer.
    Int(i64),
    /// One float.
    Float(f32),
    /// A list of integers.
    Ints(Vec<i64>),
}

/// One operator application.
#[derive(Clone, Debug)]
struct Node {
    op: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attrs: Vec<(String, Attr)>,
}

/// A float graph under construction.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    inputs: Vec<(String, Vec<Dim>)>,
    outputs: Vec<(String, Vec<Dim>)>,
    nodes: Vec<Node>,
    constants: Vec<(String, Vec<i64>, Vec<f32>)>,
    int_constants: Vec<(String, Vec<i64>, Vec<i64>)>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a float graph input.
    pub fn input(
        &mut self,
        name: &str,
        shape: impl IntoIterator<Item = impl Into<Dim>>,
    ) -> &mut Self {
        self.inputs
            .push((name.to_owned(), shape.into_iter().map(Into::into).collect()));
        self
    }

    /// Declares a float graph output.
    pub fn output(
        &mut self,
        name: &str,
        shape: impl IntoIterator<Item = impl Into<Dim>>,
    ) -> &mut Self {
        self.outputs
            .push((name.to_owned(), shape.into_iter().map(Into::into).collect()));
        self
    }

    /// Adds a float constant (an initializer).
    pub fn constant(&mut self, name: &str, dims: &[i64], values: &[f32]) -> &mut Self {
        self.constants
            .push((name.to_owned(), dims.to_vec(), values.to_vec()));
        self
    }

    /// Adds an int64 constant (for shapes, axes and sizes).
    pub fn int_constant(&mut self, name: &str, dims: &[i64], values: &[i64]) -> &mut Self {
        self.int_constants
            .push((name.to_owned(), dims.to_vec(), values.to_vec()));
        self
    }

    /// Adds a node applying `op` to `inputs`, producing `outputs`.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[(&str, Attr)],
    ) -> &mut Self {
        self.nodes.push(Node {
            op: op.to_owned(),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            outputs: outputs.iter().map(|s| (*s).to_owned()).collect(),
            attrs: attrs
                .iter()
                .map(|(n, a)| ((*n).to_owned(), a.clone()))
                .collect(),
        });
        self
    }

    /// Serialises the graph as an ONNX model (IR 8, opset 17).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut graph = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let mut node = Vec::new();
            for s in &n.inputs {
                put_bytes(&mut node, 1, s.as_bytes());
            }
            for s in &n.outputs {
                put_bytes(&mut node, 2, s.as_bytes());
            }
            put_bytes(&mut node, 3, format!("node{i}").as_bytes());
            put_bytes(&mut node, 4, n.op.as_bytes());
            for (name, a) in &n.attrs {
                put_bytes(&mut node, 5, &attribute(name, a));
            }
            put_bytes(&mut graph, 1, &node);
        }
        put_bytes(&mut graph, 2, b"tincture-test-graph");
        for (name, dims, values) in &self.constants {
            let mut t = Vec::new();
            for &d in dims {
                put_varint_field(&mut t, 1, d as u64);
            }
            put_varint_field(&mut t, 2, 1); // FLOAT
            put_bytes(&mut t, 8, name.as_bytes());
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            put_bytes(&mut t, 9, &raw);
            put_bytes(&mut graph, 5, &t);
        }
        for (name, dims, values) in &self.int_constants {
            let mut t = Vec::new();
            for &d in dims {
                put_varint_field(&mut t, 1, d as u64);
            }
            put_varint_field(&mut t, 2, 7); // INT64
            put_bytes(&mut t, 8, name.as_bytes());
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            put_bytes(&mut t, 9, &raw);
            put_bytes(&mut graph, 5, &t);
        }
        for (name, shape) in &self.inputs {
            put_bytes(&mut graph, 11, &value_info(name, shape));
        }
        for (name, shape) in &self.outputs {
            put_bytes(&mut graph, 12, &value_info(name, shape));
        }

        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 8); // ir_version
        put_bytes(&mut model, 2, b"tincture");
        put_bytes(&mut model, 7, &graph);
        let mut opset = Vec::new();
        put_bytes(&mut opset, 1, b"");
        put_varint_field(&mut opset, 2, 17);
        put_bytes(&mut model, 8, &opset);
        model
    }

    /// Writes the model to `path`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }
}

fn value_info(name: &str, shape: &[Dim]) -> Vec<u8> {
    let mut dims = Vec::new();
    for d in shape {
        let mut dim = Vec::new();
        match d {
            Dim::Fixed(v) => put_varint_field(&mut dim, 1, *v as u64),
            Dim::Named(n) => put_bytes(&mut dim, 2, n.as_bytes()),
        }
        put_bytes(&mut dims, 1, &dim);
    }
    let mut tensor = Vec::new();
    put_varint_field(&mut tensor, 1, 1); // FLOAT
    put_bytes(&mut tensor, 2, &dims);
    let mut ty = Vec::new();
    put_bytes(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    put_bytes(&mut vi, 1, name.as_bytes());
    put_bytes(&mut vi, 2, &ty);
    vi
}

fn attribute(name: &str, a: &Attr) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, 1, name.as_bytes());
    match a {
        Attr::Float(f) => {
            put_key(&mut out, 2, 5);
            out.extend_from_slice(&f.to_le_bytes());
            put_varint_field(&mut out, 20, 1);
        }
        Attr::Int(i) => {
            put_varint_field(&mut out, 3, *i as u64);
            put_varint_field(&mut out, 20, 2);
        }
        Attr::Ints(v) => {
            for i in v {
                put_varint_field(&mut out, 8, *i as u64);
            }
            put_varint_field(&mut out, 20, 7);
        }
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, 0);
    put_varint(out, v);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_encode_like_protobuf() {
        let mut v = Vec::new();
        put_varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        let mut v = Vec::new();
        put_varint(&mut v, (-1i64) as u64);
        assert_eq!(v.len(), 10, "negative int64 takes ten bytes");
        let mut v = Vec::new();
        put_bytes(&mut v, 2, b"ab");
        assert_eq!(v, [0x12, 2, b'a', b'b']);
    }
}
