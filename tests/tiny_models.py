"""Tiny, randomly initialised diffusion pipelines in each family's real diffusers layout, saved with
`save_pretrained` (safetensors) so tests load them back through exactly the user's `--model DIR` path.

Component sizes follow diffusers' own fast-test configs (tests/pipelines/{ltx,ltx2,stable_video_diffusion,wan});
text encoders and tokenizers are built from configs, never downloaded: a T5 with `d_model` equal to the
transformer's caption channels and transformers 5's `T5Tokenizer(vocab=[(piece, score), ...])`, a tiny Gemma3
for LTX-2 with a BPE `GemmaTokenizer(vocab=..., merges=...)`, CLIP vision encoders for SVD and Wan.
"""

from __future__ import annotations

from pathlib import Path

WORDS = "a the still photo photograph of moving gently music dance natural subtle motion steady camera coming to " \
        "life worst quality inconsistent blurry jittery distorted morphing"


def _t5(d_model: int) -> tuple[object, object]:
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>", "▁"] + ["▁" + w for w in WORDS.split()] + list("abcdefghijklmnopqrstuvwxyz,.")
    tokenizer = T5Tokenizer(vocab=[(p, -float(i)) for i, p in enumerate(pieces)], extra_ids=0)
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return T5EncoderModel(config), tokenizer


def build_ltx(folder: Path) -> Path:
    """LTXConditionPipeline as in diffusers' test_ltx_condition.py (spatial ratio 4, temporal ratio 4)."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=32)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False)
    text_encoder, tokenizer = _t5(32)
    pipe = LTXConditionPipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                                text_encoder=text_encoder, tokenizer=tokenizer)
    pipe.save_pretrained(folder)
    return folder


def build_svd(folder: Path) -> Path:
    """StableVideoDiffusionPipeline as in diffusers' test_stable_video_diffusion.py (CLIP at 224 px)."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(  # the test's blocks, one layer each, SVD's 14-frame variant
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=32,
        num_attention_heads=2, projection_class_embeddings_input_dim=96, addition_time_embed_dim=32,
        num_frames=14)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
        steps_offset=1, timestep_spacing="leading", timestep_type="continuous", trained_betas=None,
        use_karras_sigmas=True)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                                       latent_channels=4)
    # The pipeline resizes PIL stills to 224x224 for CLIP (the tests feed tensors, which skip that), so the
    # tiny encoder takes 224-pixel images in 14-pixel patches; otherwise as in the test config.
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=5, num_attention_heads=4, image_size=224,
        intermediate_size=37, patch_size=14))
    pipe = StableVideoDiffusionPipeline(unet=unet, image_encoder=image_encoder, scheduler=scheduler, vae=vae,
                                        feature_extractor=CLIPImageProcessor(crop_size=32, size=32))
    pipe.save_pretrained(folder)
    return folder


def build_wan(folder: Path) -> Path:
    """WanImageToVideoPipeline as in diffusers' test_wan_image_to_video.py (T5 with d_model = text_dim 32)."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    text_encoder, tokenizer = _t5(32)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32, image_dim=4)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        intermediate_size=16, patch_size=1))
    pipe = WanImageToVideoPipeline(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder, tokenizer=tokenizer, image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=32, size=32))
    pipe.save_pretrained(folder)
    return folder


def _gemma3(hidden: int) -> tuple[object, object]:
    """A tiny Gemma3ForConditionalGeneration (text + SigLIP vision tower) and a word-level BPE GemmaTokenizer."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        GemmaTokenizer,
        SiglipVisionConfig,
    )

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
    words = ["▁" + w for w in WORDS.split()] + list("abcdefghijklmnopqrstuvwxyz,.▁")
    vocab = {token: i for i, token in enumerate(specials + words)}
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    text = Gemma3TextConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=16,
                            max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                                image_size=32, patch_size=8)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                          boi_token_index=5, eoi_token_index=6, image_token_index=7)
    return Gemma3ForConditionalGeneration(config), tokenizer


def build_ltx2(folder: Path) -> Path:
    """LTX2ConditionPipeline as in diffusers' test_ltx2_condition.py, with a Gemma3 built from a config and an
    audio VAE with three levels (like the real one: 4x down in time and mel) so encoding music round-trips."""
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2ConditionPipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(0)
    text_encoder, tokenizer = _gemma3(32)
    text_config = text_encoder.config.text_config
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2, qk_norm="rms_norm_across_heads",
        caption_channels=text_config.hidden_size, rope_double_precision=False, rope_type="split")
    connectors = LTX2TextConnectors(
        caption_channels=text_config.hidden_size, text_proj_in_factor=text_config.num_hidden_layers + 1,
        video_connector_num_attention_heads=4, video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None, audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None, connector_rope_base_seq_len=32, rope_theta=10000.0,
        rope_double_precision=False, causal_temporal_positioning=False, rope_type="split")
    vae = AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,), decoder_block_out_channels=(8,),
        layers_per_block=(1,), decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False), downsample_type=("spatial",),
        upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1, 1, 1), num_res_blocks=1, attn_resolutions=None, in_channels=2,
        resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
        mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8)
    vocoder = LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2], resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]], leaky_relu_negative_slope=0.1, output_sampling_rate=16000)
    pipe = LTX2ConditionPipeline(transformer=transformer, vae=vae, audio_vae=audio_vae,
                                 scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=text_encoder,
                                 tokenizer=tokenizer, connectors=connectors, vocoder=vocoder, audio_scheduler=None)
    pipe.save_pretrained(folder)
    return folder
