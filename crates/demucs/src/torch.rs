//! Legacy `.th` packages: a zip-format `torch.save` of
//! `{klass, args, kwargs, state, training_args, ...}`, read without Python.
//!
//! The pickle is interpreted by a small stack machine written here: general pickle
//! crates cannot resolve torch's persistent storage references (`BINPERSID`) to the
//! tensor data stored beside the pickle in the zip archive, and nothing else in a
//! checkpoint needs more than the opcodes below. Globals are never executed: they
//! are recognised by name (`torch._utils._rebuild_tensor_v2`, `fractions.Fraction`,
//! `collections.OrderedDict`, the model class), so a hostile file cannot run code.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use safetensors::Dtype;
use serde_json::{json, Value as Json};

use crate::weights::{bad, config_for, to_f32, unsupported, Checkpoint, Tensor};
use crate::DemucsError;

#[derive(Debug, Clone, PartialEq)]
enum V {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<V>),
    Tuple(Vec<V>),
    Dict(Vec<(V, V)>),
    Global(String, String),
    Reduce(Box<V>, Box<V>),
    PersId(Box<V>),
    Mark,
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<V>,
    memo: HashMap<u32, V>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or("pickle ends early")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("unterminated line")?;
        let s = String::from_utf8_lossy(&rest[..n]).to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<V, String> {
        self.stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<V>, String> {
        let i = self
            .stack
            .iter()
            .rposition(|v| *v == V::Mark)
            .ok_or("no mark")?;
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut V, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn run(mut self) -> Result<V, String> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                } // PROTO
                0x95 => {
                    self.take(8)?;
                } // FRAME
                b'.' => return self.pop(),
                b'(' => self.stack.push(V::Mark),
                b'N' => self.stack.push(V::None),
                0x88 => self.stack.push(V::Bool(true)),
                0x89 => self.stack.push(V::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(V::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(V::Int(i64::from(v)));
                }
                b'M' => {
                    let b = self.take(2)?;
                    self.stack
                        .push(V::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, byte) in b.iter().enumerate().take(8) {
                        v |= i64::from(*byte) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(V::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(V::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(V::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(V::Str(s));
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(V::Str(s));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(V::Bytes(b));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(V::Bytes(b));
                }
                b'}' => self.stack.push(V::Dict(Vec::new())),
                b']' => self.stack.push(V::List(Vec::new())),
                b')' => self.stack.push(V::Tuple(Vec::new())),
                0x8f => self.stack.push(V::List(Vec::new())), // EMPTY_SET, as a list
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = items
                        .chunks(2)
                        .filter(|p| p.len() == 2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect();
                    self.stack.push(V::Dict(pairs));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(V::List(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(V::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .ok_or("pickle stack underflow")?;
                    let items = self.stack.split_off(at);
                    self.stack.push(V::Tuple(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        V::List(l) => l.push(v),
                        _ => return Err("APPEND to a non-list".into()),
                    }
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        V::List(l) => l.extend(items),
                        _ => return Err("APPENDS to a non-list".into()),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        V::Dict(d) => d.push((k, v)),
                        // SETITEM on an OrderedDict(): keep the items on the reduce.
                        V::Reduce(_, args) => {
                            if let V::Tuple(t) = args.as_mut() {
                                t.push(V::Tuple(vec![k, v]));
                            }
                        }
                        _ => return Err("SETITEM on a non-dict".into()),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs: Vec<(V, V)> = items
                        .chunks(2)
                        .filter(|p| p.len() == 2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect();
                    match self.top()? {
                        V::Dict(d) => d.extend(pairs),
                        V::Reduce(_, args) => {
                            if let V::Tuple(t) = args.as_mut() {
                                t.extend(pairs.into_iter().map(|(k, v)| V::Tuple(vec![k, v])));
                            }
                        }
                        _ => return Err("SETITEMS on a non-dict".into()),
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(V::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (V::Str(m), V::Str(n)) => self.stack.push(V::Global(m, n)),
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack
                        .push(V::Reduce(Box::new(callable), Box::new(args)));
                }
                b'b' => {
                    // BUILD: state for an object; kept out of the way (tensors carry
                    // no state we need; models are named, not built).
                    self.pop()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(V::PersId(Box::new(pid)));
                }
                b'q' => {
                    let i = u32::from(self.u8()?);
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' => {
                    let i = u32::from(self.u8()?);
                    let v = self.memo.get(&i).cloned().ok_or("unknown memo")?;
                    self.stack.push(v);
                }
                b'j' => {
                    let i = self.u32()?;
                    let v = self.memo.get(&i).cloned().ok_or("unknown memo")?;
                    self.stack.push(v);
                }
                other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
            }
        }
    }
}

fn dict_get<'v>(d: &'v [(V, V)], key: &str) -> Option<&'v V> {
    d.iter()
        .find(|(k, _)| matches!(k, V::Str(s) if s == key))
        .map(|(_, v)| v)
}

/// Plain Python values as JSON (fractions as the HF export encodes them).
fn to_json(v: &V) -> Json {
    match v {
        V::None | V::Mark => Json::Null,
        V::Bool(b) => json!(b),
        V::Int(i) => json!(i),
        V::Float(f) => json!(f),
        V::Str(s) => json!(s),
        V::Bytes(_) | V::PersId(_) => Json::Null,
        V::List(l) | V::Tuple(l) => Json::Array(l.iter().map(to_json).collect()),
        V::Dict(d) => Json::Object(
            d.iter()
                .filter_map(|(k, v)| match k {
                    V::Str(s) => Some((s.clone(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        V::Global(m, n) => json!(format!("{m}.{n}")),
        V::Reduce(f, args) => match (f.as_ref(), args.as_ref()) {
            (V::Global(m, n), V::Tuple(a)) if m == "fractions" && n == "Fraction" => {
                // Python 3.11+ pickles (numerator, denominator); older versions the
                // string "n/d".
                let parsed = match a.as_slice() {
                    [V::Int(n), V::Int(d)] => Some((*n, *d)),
                    [V::Str(text)] => {
                        let (num, den) = text.split_once('/').unwrap_or((text.as_str(), "1"));
                        num.trim().parse().ok().zip(den.trim().parse().ok())
                    }
                    _ => None,
                };
                match parsed {
                    Some((n, d)) if n >= 0 && d > 0 => {
                        json!({"_type": "fraction", "numerator": n, "denominator": d})
                    }
                    _ => Json::Null,
                }
            }
            _ => Json::Null,
        },
    }
}

/// The `(key, value)` items of a state dict (a dict or an `OrderedDict()` reduce).
fn items(v: &V) -> Option<Vec<(V, V)>> {
    match v {
        V::Dict(d) => Some(d.clone()),
        V::Reduce(f, args) if matches!(f.as_ref(), V::Global(m, n) if m == "collections" && n == "OrderedDict") => {
            match args.as_ref() {
                V::Tuple(t) => Some(
                    t.iter()
                        .filter_map(|i| match i {
                            V::Tuple(kv) if kv.len() == 2 => Some((kv[0].clone(), kv[1].clone())),
                            V::List(l) => l.first().and_then(|first| match first {
                                V::Tuple(kv) if kv.len() == 2 => {
                                    Some((kv[0].clone(), kv[1].clone()))
                                }
                                _ => None,
                            }),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => Some(Vec::new()),
            }
        }
        _ => None,
    }
}

fn ints(v: &V) -> Option<Vec<usize>> {
    match v {
        V::Tuple(t) | V::List(t) => t
            .iter()
            .map(|x| match x {
                V::Int(i) if *i >= 0 => Some(*i as usize),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Reads a `.th` package.
pub fn load_th(path: &Path) -> Result<Checkpoint, DemucsError> {
    let file = std::fs::File::open(path).map_err(|e| DemucsError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        bad(
            path,
            format!(
                "not a zip-format torch package ({e}); old pre-1.6 torch files are not supported"
            ),
        )
    })?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| bad(path, "no data.pkl in the package"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pkl = Vec::new();
    zip.by_name(&pkl_name)
        .and_then(|mut f| f.read_to_end(&mut pkl).map_err(Into::into))
        .map_err(|e| bad(path, format!("{e}")))?;
    let root = Machine {
        data: &pkl,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
    .map_err(|e| bad(path, e))?;
    let V::Dict(top) = &root else {
        return Err(bad(path, "the package is not a dict"));
    };
    let klass = match dict_get(top, "klass") {
        Some(V::Global(m, n)) => format!("{m}.{n}"),
        _ => return Err(bad(path, "no model class (klass)")),
    };
    let args = dict_get(top, "args").map_or(Json::Null, to_json);
    let kwargs = dict_get(top, "kwargs").map_or(Json::Null, to_json);
    let config = config_for(path, &klass, &args, &kwargs)?;
    let state = dict_get(top, "state")
        .and_then(items)
        .ok_or_else(|| bad(path, "no state"))?;
    let mut tensors = HashMap::new();
    for (k, v) in &state {
        let V::Str(name) = k else { continue };
        if name == "__quantized" {
            return Err(unsupported(path, "diffq-quantized state"));
        }
        let tensor = read_tensor(path, &mut zip, &prefix, v)
            .map_err(|d| bad(path, format!("{name}: {d}")))?;
        tensors.insert(name.clone(), tensor);
    }
    Ok(Checkpoint::from_parts(path, config, tensors))
}

fn read_tensor<R: std::io::Read + std::io::Seek>(
    _path: &Path,
    zip: &mut zip::ZipArchive<R>,
    prefix: &str,
    v: &V,
) -> Result<Tensor, String> {
    let V::Reduce(f, args) = v else {
        return Err("not a tensor".into());
    };
    if !matches!(f.as_ref(), V::Global(m, n) if m == "torch._utils" && n == "_rebuild_tensor_v2") {
        return Err("not a plain tensor".into());
    }
    let V::Tuple(a) = args.as_ref() else {
        return Err("bad tensor arguments".into());
    };
    let (Some(V::PersId(pid)), Some(V::Int(offset)), Some(size), Some(stride)) =
        (a.first(), a.get(1), a.get(2), a.get(3))
    else {
        return Err("bad tensor arguments".into());
    };
    let shape = ints(size).ok_or("bad size")?;
    let strides = ints(stride).ok_or("bad stride")?;
    let V::Tuple(p) = pid.as_ref() else {
        return Err("bad storage reference".into());
    };
    let (Some(V::Global(_, storage)), Some(V::Str(key))) = (p.get(1), p.get(2)) else {
        return Err("bad storage reference".into());
    };
    let dtype = match storage.as_str() {
        "HalfStorage" => Dtype::F16,
        "BFloat16Storage" => Dtype::BF16,
        "FloatStorage" => Dtype::F32,
        "DoubleStorage" => Dtype::F64,
        other => return Err(format!("storage type {other}")),
    };
    let mut raw = Vec::new();
    zip.by_name(&format!("{prefix}data/{key}"))
        .map_err(|e| format!("storage {key}: {e}"))?
        .read_to_end(&mut raw)
        .map_err(|e| format!("storage {key}: {e}"))?;
    let all = to_f32(dtype, &raw).ok_or("dtype")?;
    let numel: usize = shape.iter().product();
    let offset = usize::try_from(*offset).map_err(|_| "negative offset")?;
    // Gather by strides (state tensors are contiguous, but views need not be).
    let mut data = Vec::with_capacity(numel);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..numel {
        let pos = offset + idx.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>();
        data.push(*all.get(pos).ok_or("tensor runs past its storage")?);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(Tensor { shape, data })
}
