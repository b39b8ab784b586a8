//! A reader of NetCDF-3 files, classic (`CDF\x01`) and 64-bit offset
//! (`CDF\x02`), after Unidata's "NetCDF Classic Format Specification":
//!
//! ```text
//! header  = magic numrecs dim_list gatt_list var_list
//! dim     = name dim_length              (0: the unlimited dimension)
//! attr    = name nc_type nelems values   (padded to 4 bytes)
//! var     = name nelems [dimid ...] vatt_list nc_type vsize begin
//! ```
//!
//! Big-endian throughout; `begin` is 32-bit in classic files and 64-bit in
//! 64-bit offset files. A record variable (first dimension unlimited)
//! stores one slab per record, records `recsize` bytes apart, `recsize`
//! being the sum of the record variables' `vsize` (or, with one record
//! variable, its unpadded slab). Every length and offset read from the file
//! is checked against the file's size before use, so a corrupt or
//! truncated file is an error, never a panic or a huge allocation.

use super::{Variable, NC_FILL_DOUBLE, NC_FILL_FLOAT};

const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;
/// `numrecs` of a file still being written ("streaming").
const STREAMING: u32 = 0xFFFF_FFFF;

/// An attribute's values.
#[derive(Clone, Debug, PartialEq)]
enum Values {
    Text(String),
    Numbers(Vec<f64>),
}

#[derive(Clone, Debug)]
struct Var {
    name: String,
    dims: Vec<usize>,
    attrs: Vec<(String, Values)>,
    nc_type: u32,
    begin: u64,
}

/// A parsed NetCDF-3 file: its header, and its bytes for the values.
pub struct Classic {
    bytes: Vec<u8>,
    /// Dimension names and lengths (the unlimited one with the record count).
    dims: Vec<(String, usize)>,
    unlimited: Option<usize>,
    all: Vec<Var>,
    records: usize,
    recsize: u64,
}

/// The size in bytes of one value of `nc_type`.
fn type_size(nc_type: u32) -> Option<u64> {
    match nc_type {
        1 | 2 => Some(1),
        3 => Some(2),
        4 | 5 => Some(4),
        6 => Some(8),
        _ => None,
    }
}

fn type_name(nc_type: u32) -> &'static str {
    match nc_type {
        1 => "byte",
        2 => "char",
        3 => "short",
        4 => "int",
        5 => "float",
        6 => "double",
        _ => "unknown",
    }
}

/// A cursor over the header that fails, rather than panics, at its end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const TRUNCATED: &str = "corrupt or truncated NetCDF-3 header";

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let end =
            (self.pos as u64).checked_add(n).filter(|&e| e <= self.bytes.len() as u64).ok_or_else(|| {
                format!("{TRUNCATED}: it ends at byte {} of {}", self.bytes.len(), self.pos as u64 + n)
            })?;
        let slice = &self.bytes[self.pos..end as usize];
        self.pos = end as usize;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// `n` bytes and the zero padding to a multiple of 4.
    fn padded(&mut self, n: u64) -> Result<&[u8], String> {
        let start = self.pos;
        self.take(n.div_ceil(4) * 4)?;
        Ok(&self.bytes[start..start + n as usize])
    }

    fn name(&mut self) -> Result<String, String> {
        let n = self.u32()?;
        let b = self.padded(u64::from(n))?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{TRUNCATED}: a name is not UTF-8 text"))
    }

    /// A list's tag and length: `ABSENT` (two zeros) gives 0.
    fn list(&mut self, tag: u32, what: &str) -> Result<u64, String> {
        let (t, n) = (self.u32()?, self.u32()?);
        match (t, n) {
            (0, 0) => Ok(0),
            (t, n) if t == tag => {
                // Each element takes at least 8 bytes: a count beyond that
                // cannot be right.
                if u64::from(n) * 8 > self.bytes.len() as u64 {
                    return Err(format!("{TRUNCATED}: it claims {n} {what}"));
                }
                Ok(u64::from(n))
            }
            _ => Err(format!("{TRUNCATED}: the list of {what} is malformed")),
        }
    }

    fn attributes(&mut self) -> Result<Vec<(String, Values)>, String> {
        let n = self.list(NC_ATTRIBUTE, "attributes")?;
        let mut attrs = vec![];
        for _ in 0..n {
            let name = self.name()?;
            let nc_type = self.u32()?;
            let count = u64::from(self.u32()?);
            let size = type_size(nc_type)
                .ok_or_else(|| format!("{TRUNCATED}: attribute `{name}` has type {nc_type}"))?;
            let b = self.padded(count.saturating_mul(size))?;
            let values = if nc_type == 2 {
                Values::Text(String::from_utf8_lossy(b).trim_end_matches('\0').to_string())
            } else {
                Values::Numbers(decode(b, nc_type))
            };
            attrs.push((name, values));
        }
        Ok(attrs)
    }
}

/// Big-endian values of `nc_type` (not `char`) as f64.
fn decode(b: &[u8], nc_type: u32) -> Vec<f64> {
    match nc_type {
        1 => b.iter().map(|&v| f64::from(v as i8)).collect(),
        3 => b.chunks_exact(2).map(|c| f64::from(i16::from_be_bytes([c[0], c[1]]))).collect(),
        4 => b.chunks_exact(4).map(|c| f64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        5 => b.chunks_exact(4).map(|c| f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        6 => b
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        _ => vec![],
    }
}

impl Classic {
    /// Parses the header of a NetCDF-3 file held in `bytes`.
    pub fn parse(bytes: Vec<u8>) -> Result<Classic, String> {
        let mut r = Reader { bytes: &bytes, pos: 0 };
        let magic = r.take(4)?;
        let wide = match magic {
            b"CDF\x01" => false,
            b"CDF\x02" => true,
            _ => return Err("not a NetCDF-3 file".into()),
        };
        let numrecs = r.u32()?;
        let ndims = r.list(NC_DIMENSION, "dimensions")?;
        let mut dims = vec![];
        let mut unlimited = None;
        for i in 0..ndims {
            let name = r.name()?;
            let len = r.u32()? as usize;
            if len == 0 {
                unlimited = Some(i as usize);
            }
            dims.push((name, len));
        }
        let _global = r.attributes()?;
        let nvars = r.list(NC_VARIABLE, "variables")?;
        let mut all = vec![];
        for _ in 0..nvars {
            let name = r.name()?;
            let rank = r.list_len()?;
            let mut var_dims = vec![];
            for _ in 0..rank {
                let id = r.u32()? as usize;
                if id >= dims.len() {
                    return Err(format!(
                        "{TRUNCATED}: variable `{name}` names dimension {id} of {}",
                        dims.len()
                    ));
                }
                var_dims.push(id);
            }
            let attrs = r.attributes()?;
            let nc_type = r.u32()?;
            let _vsize = r.u32()?;
            let begin = if wide { r.u64()? } else { u64::from(r.u32()?) };
            all.push(Var { name, dims: var_dims, attrs, nc_type, begin });
        }
        let mut c = Classic { bytes: vec![], dims, unlimited, all, records: 0, recsize: 0 };
        // Record variables and the record size.
        let slabs: Vec<u64> = c.all.iter().filter(|v| c.is_record(v)).map(|v| c.slab(v)).collect();
        c.recsize = match slabs.as_slice() {
            [one] => *one,
            many => many.iter().map(|s| s.div_ceil(4) * 4).sum(),
        };
        c.records = if numrecs == STREAMING {
            // A file still being written: as many records as the data hold.
            let first = c.all.iter().filter(|v| c.is_record(v)).map(|v| v.begin).min().unwrap_or(0);
            (bytes.len() as u64).saturating_sub(first).checked_div(c.recsize).unwrap_or(0) as usize
        } else {
            numrecs as usize
        };
        if let Some(u) = c.unlimited {
            c.dims[u].1 = c.records;
        }
        c.bytes = bytes;
        Ok(c)
    }

    /// The names of the variables, in file order.
    pub fn names(&self) -> Vec<String> {
        self.all.iter().map(|v| v.name.clone()).collect()
    }

    /// The names of the variables that hold numbers (not `char` text).
    pub fn numeric_names(&self) -> Vec<String> {
        let numeric = |v: &&Var| v.nc_type != 2 && type_size(v.nc_type).is_some();
        self.all.iter().filter(numeric).map(|v| v.name.clone()).collect()
    }

    fn is_record(&self, v: &Var) -> bool {
        v.dims.first().is_some_and(|&d| Some(d) == self.unlimited)
    }

    /// The bytes of one record of a record variable, or of the whole of
    /// another variable.
    fn slab(&self, v: &Var) -> u64 {
        let skip = usize::from(self.is_record(v));
        let count = v.dims[skip.min(v.dims.len())..]
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(self.dims[d].1 as u64))
            .unwrap_or(u64::MAX);
        count.saturating_mul(type_size(v.nc_type).unwrap_or(1))
    }

    /// The variable `name`: dimensions, values and decoding attributes.
    pub fn variable(&self, name: &str) -> Result<Variable, String> {
        let v = self.all.iter().find(|v| v.name == name).ok_or_else(|| format!("no variable `{name}`"))?;
        if v.nc_type == 2 || type_size(v.nc_type).is_none() {
            return Err(format!("variable `{name}` holds {} values, not numbers", type_name(v.nc_type)));
        }
        let dims: Vec<String> = v.dims.iter().map(|&d| self.dims[d].0.clone()).collect();
        let shape: Vec<usize> = v.dims.iter().map(|&d| self.dims[d].1).collect();
        let slab = self.slab(v);
        let (records, stride) = if self.is_record(v) { (self.records as u64, self.recsize) } else { (1, 0) };
        let file = self.bytes.len() as u64;
        let last = v
            .begin
            .checked_add(stride.saturating_mul(records.saturating_sub(1)))
            .and_then(|s| s.checked_add(slab))
            .filter(|&end| records == 0 || end <= file);
        if last.is_none() {
            return Err(format!(
                "the file is truncated: the values of variable `{name}` run past its end ({file} bytes)"
            ));
        }
        let mut raw = Vec::with_capacity((slab * records) as usize);
        for r in 0..records {
            let start = (v.begin + r * stride) as usize;
            raw.extend_from_slice(&self.bytes[start..start + slab as usize]);
        }
        let values = decode(&raw, v.nc_type);
        let numbers = |attr: &str| -> Vec<f64> {
            match v.attrs.iter().find(|(n, _)| n == attr) {
                Some((_, Values::Numbers(x))) => x.clone(),
                _ => vec![],
            }
        };
        // The default fill values of the format (bytes are not filled).
        let default_fill = match v.nc_type {
            3 => Some(-32767.0),
            4 => Some(-2147483647.0),
            5 => Some(f64::from(NC_FILL_FLOAT)),
            6 => Some(NC_FILL_DOUBLE),
            _ => None,
        };
        let units = match v.attrs.iter().find(|(n, _)| n == "units") {
            Some((_, Values::Text(t))) => Some(t.clone()),
            _ => None,
        };
        let integer = matches!(v.nc_type, 1 | 3 | 4);
        Ok(Variable::from_attributes(name, dims, shape, values, numbers, default_fill, units, integer))
    }
}

impl Reader<'_> {
    /// A variable's number of dimensions (a count without a tag).
    fn list_len(&mut self) -> Result<u64, String> {
        let n = u64::from(self.u32()?);
        if n * 4 > self.bytes.len() as u64 {
            return Err(format!("{TRUNCATED}: a variable claims {n} dimensions"));
        }
        Ok(n)
    }
}
