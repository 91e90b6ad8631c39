"""PPO on the summarizer and the co-adaptation loop around it (Algorithm 1 of the PLUS paper).

- ``rollout``: summarizer prompts, sampling, per-token log-probs and critic values;
- ``vllm_rollout``: the optional vLLM sampler (``ppo.rollout_engine: vllm``);
- ``algorithm``: ``PPOConfig`` and the math (KL, token rewards, advantages, losses, step counts);
- ``batches``: the ``Experience`` an update runs over, and its minibatches;
- ``trainer``: ``PPOTrainer`` (generate, ``make_experience``, ``update``) and ``Critic``;
- ``coadapt_config``: the typed run config; ``coadapt``: the run, ``CoAdaptation.iterate``.
"""
