/* target_list.h - the registered targets, one line each, in the order --help lists them.
 * GFV_TARGET(id) names the type gfv_target_type_<id> defined in the target's own file
 * (src/targets/registry.h; docs/developer.md, "How to add a target").  Included by
 * registry.h (declarations) and registry.c (the list), with GFV_TARGET defined by each. */
GFV_TARGET(gauss)
GFV_TARGET(gmm4)
GFV_TARGET(gmm_file)
GFV_TARGET(banana)
GFV_TARGET(funnel)
GFV_TARGET(logreg)
GFV_TARGET(bnn)
GFV_TARGET(plugin)
GFV_TARGET(stan)
