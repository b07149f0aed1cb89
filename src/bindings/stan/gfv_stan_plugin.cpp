// gfv_stan_plugin.cpp - a Stan model as a gflowvi plugin (include/gflowvi/plugin.h).
//
// tools/stan/gflowvi-stan compiles this file once into shim.o and links it with each
// model's stanc-generated C++ (which defines new_model, the factory of Stan 2.21's
// stan::model::model_base) into model.so.  gflowvi loads it for --target=stan:MODEL.stan
// with the plugin arguments data=FILE.json and seed=N; `--target=plugin:model.so
// --plugin-arg=data=FILE.json` works as well.
//
// The density: z is the vector of Stan's unconstrained parameters, and
//   l(z) = log p(data, theta(z)) + log |J(z)|,
// computed by stan::model::log_prob_grad<propto = false, jacobian = true>: every constant
// of every statement is kept (with propto = true the `~` statements would drop theirs, but
// `target += *_lpdf(...)` would keep them), so l is the log joint density as written, and
// gflowvi's ELBO and log Z estimate the model's log marginal likelihood (log evidence),
// comparable across models and with other tools that use the whole density.
//
// Nothing crosses the C boundary as an exception: a rejection, a domain error (a scale
// <= 0, a failed constraint check), any other std::exception and a non-finite log density
// or gradient all give l = -INFINITY and a zero gradient at that point, as a Stan sampler
// rejects such a proposal.  A std::exception other than std::domain_error is reported once
// per process as a warning through gflowvi's log (gfv_plugin_set_log; stderr unless the
// caller installed a log callback), because it usually means a bug in the model (an index
// out of range), not a point outside the support.  Print statements are not shown.
//
// The optional Hessian is by central differences of gradients (2 d gradient evaluations
// per point): Stan 2.21's automatic Hessian does not compile for ODE models and was about
// 3x slower.  gflowvi uses it only with --estimator=hessian (src/targets/stan.c).
#include <stan/model/log_prob_grad.hpp>
#include <stan/model/model_base.hpp>
#include <stan/io/array_var_context.hpp>
#include <stan/io/empty_var_context.hpp>

#include <boost/random/additive_combine.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gflowvi/plugin.h"

// Defined by the stanc-generated C++ of the model.
stan::model::model_base &new_model(stan::io::var_context &data_context, unsigned int seed,
                                   std::ostream *msg_stream);

namespace {

// ---- Stan JSON data ----------------------------------------------------------------------
// One object; each member a number, one of the strings "NaN", "Inf", "-Inf", "Infinity",
// "-Infinity", or a rectangular nested array of those.  Nested arrays are row-major (the
// last index fastest); Stan 2.21's var_context wants column-major values, so they are
// reordered here.  A variable whose values are all written as integers is an int
// variable (Stan's rule), otherwise real.

struct json_var {
  std::vector<size_t> dims;
  std::vector<double> vals;  // row-major as read
  bool all_int = true;
};

class json_reader {
 public:
  json_reader(const std::string &text, const std::string &file) : s_(text), file_(file) {}

  std::map<std::string, json_var> read() {
    std::map<std::string, json_var> vars;
    ws();
    expect('{', "the data file must be one JSON object ({\"N\": 3, \"y\": [...]})");
    ws();
    if (peek() == '}') {
      ++p_;
    } else {
      for (;;) {
        ws();
        if (peek() != '"') fail("expected a variable name in double quotes");
        std::string name = str();
        ws();
        expect(':', "expected ':' after the variable name");
        ws();
        if (vars.count(name)) fail("variable '" + name + "' appears twice");
        json_var v;
        v.dims = value(v);
        vars[name] = v;
        ws();
        if (peek() == ',') {
          ++p_;
          continue;
        }
        expect('}', "expected ',' or '}' after the value of '" + name + "'");
        break;
      }
    }
    ws();
    if (p_ != s_.size()) fail("text after the closing '}'");
    return vars;
  }

 private:
  const std::string &s_;
  std::string file_;
  size_t p_ = 0;

  [[noreturn]] void fail(const std::string &msg) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p_ && i < s_.size(); i++) {
      if (s_[i] == '\n') line++, col = 1;
      else col++;
    }
    std::ostringstream o;
    o << "data file '" << file_ << "' line " << line << ", column " << col << ": " << msg;
    throw std::invalid_argument(o.str());
  }
  char peek() const { return p_ < s_.size() ? s_[p_] : '\0'; }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) p_++;
  }
  void expect(char c, const std::string &msg) {
    if (peek() != c) fail(msg);
    ++p_;
  }
  std::string str() {
    expect('"', "expected a string");
    std::string out;
    while (peek() != '"') {
      if (peek() == '\0') fail("unterminated string");
      if (peek() == '\\') {
        ++p_;
        char c = peek();
        if (c == '\0') fail("unterminated string");
        out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
      } else {
        out += peek();
      }
      ++p_;
    }
    ++p_;
    return out;
  }

  // Reads a value, appending its numbers to v.vals; returns its shape (dims), checking
  // that the elements of every array have one shape.
  std::vector<size_t> value(json_var &v) {
    char c = peek();
    if (c == '[') {
      ++p_;
      ws();
      std::vector<size_t> elem, shape;
      size_t n = 0;
      if (peek() == ']') {
        ++p_;
        return std::vector<size_t>(1, 0);
      }
      for (;;) {
        ws();
        std::vector<size_t> e = value(v);
        if (n == 0) elem = e;
        else if (e != elem)
          fail("ragged array: the elements of an array must all have the same dimensions");
        n++;
        ws();
        if (peek() == ',') {
          ++p_;
          continue;
        }
        expect(']', "expected ',' or ']' in an array");
        break;
      }
      shape.push_back(n);
      shape.insert(shape.end(), elem.begin(), elem.end());
      return shape;
    }
    if (c == '"') {
      std::string t = str();
      double x;
      if (t == "NaN") x = std::numeric_limits<double>::quiet_NaN();
      else if (t == "Inf" || t == "Infinity" || t == "+Inf" || t == "+Infinity") x = INFINITY;
      else if (t == "-Inf" || t == "-Infinity") x = -INFINITY;
      else fail("the string \"" + t + "\" is not a number (Stan JSON allows \"NaN\", \"Inf\", \"-Inf\")");
      v.vals.push_back(x);
      v.all_int = false;
      return std::vector<size_t>();
    }
    size_t b = p_;
    if (peek() == '-' || peek() == '+') ++p_;
    bool integral = true;
    while (std::isdigit((unsigned char)peek()) || peek() == '.' || peek() == 'e' || peek() == 'E' ||
           ((peek() == '-' || peek() == '+') && (s_[p_ - 1] == 'e' || s_[p_ - 1] == 'E'))) {
      if (!std::isdigit((unsigned char)peek())) integral = false;
      ++p_;
    }
    if (p_ == b) {
      if (s_.compare(p_, 4, "true") == 0 || s_.compare(p_, 5, "false") == 0 || s_.compare(p_, 4, "null") == 0)
        fail("true, false and null are not Stan data: use numbers (0/1 for a flag)");
      fail("expected a number, an array or an object member");
    }
    std::string lex = s_.substr(b, p_ - b);
    char *end = nullptr;
    errno = 0;
    double x = std::strtod(lex.c_str(), &end);
    if (*end != '\0') fail("malformed number '" + lex + "'");
    if (integral && std::fabs(x) > 2147483647.0) integral = false;
    v.vals.push_back(x);
    if (!integral) v.all_int = false;
    return std::vector<size_t>();
  }
};

// Row-major values with dims -> column-major (the first index fastest).
std::vector<double> column_major(const std::vector<double> &rm, const std::vector<size_t> &dims) {
  size_t k = dims.size();
  if (k < 2) return rm;
  std::vector<double> cm(rm.size());
  std::vector<size_t> idx(k, 0);
  for (size_t p = 0; p < rm.size(); p++) {
    size_t c = 0;
    for (size_t a = k; a-- > 0;) c = c * dims[a] + idx[a];
    cm[c] = rm[p];
    for (size_t a = k; a-- > 0;) {  // row-major increment: last index fastest
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
  return cm;
}

std::unique_ptr<stan::io::var_context> read_data(const std::string &path) {
  if (path.empty()) return std::unique_ptr<stan::io::var_context>(new stan::io::empty_var_context());
  std::ifstream in(path.c_str(), std::ios::binary);
  if (!in) throw std::invalid_argument("cannot open data file '" + path + "': " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw std::invalid_argument("cannot read data file '" + path + "'");
  std::string text = buf.str();
  auto vars = json_reader(text, path).read();
  std::vector<std::string> nr, ni;
  std::vector<double> vr;
  std::vector<int> vi;
  std::vector<std::vector<size_t>> dr, di;
  for (auto &kv : vars) {
    std::vector<double> cm = column_major(kv.second.vals, kv.second.dims);
    if (kv.second.all_int) {
      ni.push_back(kv.first);
      di.push_back(kv.second.dims);
      for (double x : cm) vi.push_back((int)x);
    }
    // An empty array has no values to say int or real: it is both.
    if (!kv.second.all_int || cm.empty()) {
      nr.push_back(kv.first);
      dr.push_back(kv.second.dims);
      vr.insert(vr.end(), cm.begin(), cm.end());
    }
  }
  return std::unique_ptr<stan::io::var_context>(new stan::io::array_var_context(nr, vr, dr, ni, vi, di));
}

// ---- names -------------------------------------------------------------------------------

// Stan 2.21 writes "theta.1.2"; posteriordb, CmdStan and the plugin ABI spell it "theta[1,2]".
std::string bracket_name(const std::string &dotted) {
  size_t dot = dotted.find('.');
  if (dot == std::string::npos) return dotted;
  std::string out = dotted.substr(0, dot) + "[";
  for (size_t i = dot + 1; i < dotted.size(); i++) out += dotted[i] == '.' ? ',' : dotted[i];
  return out + "]";
}

std::string one_line(const std::string &s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

struct state {
  stan::model::model_base *model = nullptr;
  size_t d = 0;
  std::vector<std::string> out_names, dim_names;
  std::vector<int> groups;
  std::string data;
  int warned = 0;
  gfv_plugin_log_fn log = nullptr;  // gflowvi's log (gfv_plugin_set_log); null: stderr
  std::vector<double> scratch_z, scratch_g;
  ~state() { delete model; }
};

void copy_err(char *err, size_t errlen, const std::string &msg) {
  if (!err || errlen == 0) return;
  std::snprintf(err, errlen, "%s", msg.c_str());
}

// l and its gradient at one point; -inf and a zero gradient wherever Stan cannot give a
// finite value (see the file comment).
double logp_at(state *s, const double *z, double *grad) {
  std::vector<double> params(z, z + s->d), g;
  std::vector<int> params_i;
  double lp;
  try {
    lp = stan::model::log_prob_grad<false, true>(*s->model, params, params_i, g, nullptr);
  } catch (const std::domain_error &) {
    lp = -INFINITY;
  } catch (const std::exception &e) {
    if (!s->warned) {
      s->warned = 1;
      const std::string msg = "gfv_stan_plugin: warning: the model threw (treated as a zero "
                              "density, reported once): " + one_line(e.what());
      if (s->log)
        s->log(3 /* GFV_LOG_WARNING */, msg.c_str());
      else
        std::fprintf(stderr, "%s\n", msg.c_str());
    }
    lp = -INFINITY;
  } catch (...) {
    lp = -INFINITY;
  }
  bool ok = std::isfinite(lp) && g.size() == s->d;
  for (size_t a = 0; ok && a < s->d; a++) ok = std::isfinite(g[a]);
  if (!ok) lp = -INFINITY;
  for (size_t a = 0; a < s->d; a++) grad[a] = ok ? g[a] : 0.0;
  return lp;
}

}  // namespace

extern "C" {

int gfv_plugin_abi_version(void) { return GFV_PLUGIN_ABI_VERSION; }

// Arguments: data=FILE (Stan JSON; absent: the model has no data), seed=N (the seed of
// the transformed data block's random numbers; default 0).
int gfv_plugin_init(int argc, const char *const *argv, void **out, char *err, size_t errlen) {
  *out = nullptr;
  state *s = nullptr;
  try {
    std::string data;
    unsigned long seed = 0;
    for (int i = 0; i < argc; i++) {
      std::string a = argv[i];
      if (a.compare(0, 5, "data=") == 0) {
        data = a.substr(5);
      } else if (a.compare(0, 5, "seed=") == 0) {
        char *end = nullptr;
        seed = std::strtoul(a.c_str() + 5, &end, 10);
        if (a.size() == 5 || *end) throw std::invalid_argument("seed=" + a.substr(5) + " is not a non-negative integer");
      } else {
        throw std::invalid_argument("unknown argument '" + a + "' (a Stan model takes data=FILE.json and seed=N)");
      }
    }
    std::unique_ptr<stan::io::var_context> ctx = read_data(data);
    s = new state();
    s->data = data;
    std::ostringstream msgs;
    try {
      s->model = &new_model(*ctx, (unsigned int)seed, &msgs);
    } catch (const std::exception &e) {
      throw std::invalid_argument((data.empty() ? std::string("the model needs data (give --data=FILE.json): ")
                                                : "data file '" + data + "' does not fit the model: ") +
                                  e.what());
    }
    s->d = s->model->num_params_r();
    std::vector<std::string> names;
    s->model->constrained_param_names(names, false, false);
    size_t np = names.size();
    names.clear();
    s->model->constrained_param_names(names, true, false);
    size_t ntp = names.size();
    names.clear();
    s->model->constrained_param_names(names, true, true);
    for (size_t j = 0; j < names.size(); j++) {
      s->out_names.push_back(bracket_name(names[j]));
      s->groups.push_back(j < np ? 0 : j < ntp ? 1 : 2);
    }
    names.clear();
    s->model->unconstrained_param_names(names, false, false);
    for (auto &n : names) s->dim_names.push_back(bracket_name(n));
    if (s->dim_names.size() != s->d)
      throw std::invalid_argument("internal: unconstrained names do not match the dimension");
    if (s->d == 0)
      throw std::invalid_argument("the model has no parameters (nothing to fit)");
    *out = s;
    return 0;
  } catch (const std::exception &e) {
    delete s;
    copy_err(err, errlen, one_line(e.what()));
    return 1;
  } catch (...) {
    delete s;
    copy_err(err, errlen, "unknown exception while loading the model");
    return 1;
  }
}

size_t gfv_plugin_dim(void *p) { return static_cast<state *>(p)->d; }

void gfv_plugin_set_log(void *p, gfv_plugin_log_fn log) { static_cast<state *>(p)->log = log; }

int gfv_plugin_logdensity(void *p, size_t n, size_t d, const double *z, double *logp, double *grad) {
  state *s = static_cast<state *>(p);
  if (d != s->d) return 2;
  for (size_t i = 0; i < n; i++) logp[i] = logp_at(s, z + i * d, grad + i * d);
  return 0;
}

// Central differences of gradients, steps h_a = cbrt(eps) max(1, |z_a|) (the step that
// balances truncation and rounding), symmetrised.  Where one side is outside the support
// the one-sided difference is used; where the point itself is, the Hessian is zero (the
// sample does not enter the estimates).
int gfv_plugin_hessian(void *p, size_t n, size_t d, const double *z, double *hess) {
  state *s = static_cast<state *>(p);
  if (d != s->d) return 2;
  std::vector<double> zp(d), gp(d), gm(d), g0(d);
  for (size_t i = 0; i < n; i++) {
    const double *zi = z + i * d;
    double *H = hess + i * d * d;
    double l0 = logp_at(s, zi, g0.data());
    for (size_t a = 0; a < d; a++) {
      if (!std::isfinite(l0)) {
        for (size_t b = 0; b < d; b++) H[a * d + b] = 0;
        continue;
      }
      double h = std::cbrt(std::numeric_limits<double>::epsilon()) * std::fmax(1.0, std::fabs(zi[a]));
      zp.assign(zi, zi + d);
      zp[a] = zi[a] + h;
      double lp = logp_at(s, zp.data(), gp.data());
      zp[a] = zi[a] - h;
      double lm = logp_at(s, zp.data(), gm.data());
      for (size_t b = 0; b < d; b++) {
        double v = 0;
        if (std::isfinite(lp) && std::isfinite(lm)) v = (gp[b] - gm[b]) / (2 * h);
        else if (std::isfinite(lp)) v = (gp[b] - g0[b]) / h;
        else if (std::isfinite(lm)) v = (g0[b] - gm[b]) / h;
        H[a * d + b] = v;
      }
    }
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < a; b++) {
        double m = 0.5 * (H[a * d + b] + H[b * d + a]);
        H[a * d + b] = H[b * d + a] = m;
      }
  }
  return 0;
}

size_t gfv_plugin_num_outputs(void *p) { return static_cast<state *>(p)->out_names.size(); }

int gfv_plugin_output_names(void *p, const char **names) {
  state *s = static_cast<state *>(p);
  for (size_t j = 0; j < s->out_names.size(); j++) names[j] = s->out_names[j].c_str();
  return 0;
}

int gfv_plugin_output_groups(void *p, int *group) {
  state *s = static_cast<state *>(p);
  for (size_t j = 0; j < s->groups.size(); j++) group[j] = s->groups[j];
  return 0;
}

int gfv_plugin_dim_names(void *p, const char **names) {
  state *s = static_cast<state *>(p);
  for (size_t a = 0; a < s->d; a++) names[a] = s->dim_names[a].c_str();
  return 0;
}

// Stan's write_array: the constrained parameters, transformed parameters and generated
// quantities at z, the generated quantities' random numbers from an ecuyer1988 generator
// seeded with seed (folded to 32 bits, as Stan seeds it).
int gfv_plugin_write_array(void *p, const double *z, double *out, unsigned long seed) {
  state *s = static_cast<state *>(p);
  size_t m = s->out_names.size();
  try {
    unsigned int s32 = (unsigned int)(seed ^ (seed >> 32));
    boost::ecuyer1988 rng(s32 == 0 ? 1u : s32);
    std::vector<double> params(z, z + s->d), vars;
    std::vector<int> params_i;
    s->model->write_array(rng, params, params_i, vars, true, true, nullptr);
    if (vars.size() != m) throw std::logic_error("write_array gave another number of values");
    for (size_t j = 0; j < m; j++) out[j] = vars[j];
  } catch (...) {
    for (size_t j = 0; j < m; j++) out[j] = std::numeric_limits<double>::quiet_NaN();
  }
  return 0;
}

void gfv_plugin_destroy(void *p) { delete static_cast<state *>(p); }

}  // extern "C"
