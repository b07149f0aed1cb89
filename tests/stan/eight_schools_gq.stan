// posteriordb's non-centred eight schools (tests/stan/posteriordb/) with generated
// quantities, for tests/cli/test_stan_outputs.sh: y_rep drawn by Stan's RNG (seeded per
// draw by gflowvi), and a matrix of known values, M[i, j] = 10 i + j, whose names Stan
// writes column-major (M[1,1], M[2,1], ...) and posterior.nc must put back in place.
data {
  int<lower=0> J;
  array[J] real y;
  array[J] real<lower=0> sigma;
}
parameters {
  vector[J] theta_trans;
  real mu;
  real<lower=0> tau;
}
transformed parameters {
  vector[J] theta = theta_trans * tau + mu;
}
model {
  theta_trans ~ normal(0, 1);
  y ~ normal(theta, sigma);
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
}
generated quantities {
  array[J] real y_rep = normal_rng(theta, sigma);
  matrix[2, 3] M;
  for (i in 1:2)
    for (j in 1:3)
      M[i, j] = 10 * i + j;
}
