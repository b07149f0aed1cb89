// Bayesian logistic regression written as gflowvi's built-in --target=logreg defines it
// (src/targets/logreg.c): weights beta for the P features in file order, the intercept
// alpha last, prior N(0, s^2) on every weight, normalised.  tests/cli/test_stan.sh checks
// that a fit gives the built-in target's ELBO.
data {
  int<lower=0> N;
  int<lower=1> P;
  matrix[N, P] X;
  array[N] int<lower=0, upper=1> y;
  real<lower=0> s;
}
parameters {
  vector[P] beta;
  real alpha;
}
model {
  beta ~ normal(0, s);
  alpha ~ normal(0, s);
  y ~ bernoulli_logit(alpha + X * beta);
}
