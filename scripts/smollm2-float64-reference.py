#!/usr/bin/env python3
"""float64 reference forward of SmolLM2 Q4_1 from its GGUF (weights dequantized by gguf-py, `pip install gguf numpy`):
the first-step top-5 logits of case $CASE (default 0) of Tests/Fixtures/smollm2/golden.json, next to llama.cpp's.
Kujira's float path (unquantized activations) gives the same numbers to 1e-3; see docs/inference.md."""
import json, os, numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
M=os.path.expanduser('~/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf')
r=GGUFReader(M)
W={}
for t in r.tensors:
    a=dequantize(t.data, t.tensor_type).astype(np.float64)
    W[t.name]=a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim==1 and len(t.shape)>1 else a
def f(k):
    v=r.fields[k]; return v.parts[v.data[0]][0]
L=int(f('llama.block_count')); H=int(f('llama.attention.head_count')); KV=int(f('llama.attention.head_count_kv'))
eps=float(f('llama.attention.layer_norm_rms_epsilon')); theta=float(f('llama.rope.freq_base'))
g=json.load(open(os.path.join(os.path.dirname(__file__), '..', 'Tests/Fixtures/smollm2/golden.json')))
case=int(os.environ.get('CASE','0'))
toks=g['cases'][case]['prompt_tokens']
E=W['token_embd.weight']; D=E.shape[1]; hd=D//H
x=E[toks].copy(); T=len(toks)
def rms(x,w): return x/np.sqrt((x*x).mean(-1,keepdims=True)+eps)*w
inv=1.0/theta**(np.arange(0,hd,2)/hd)
ang=np.arange(T)[:,None]*inv[None,:]; c=np.cos(ang); s=np.sin(ang)
def rope(q): # interleaved pairs (llama.cpp NORM mode on permuted weights)
    q=q.copy(); a=q[...,0::2].copy(); b=q[...,1::2].copy()
    q[...,0::2]=a*c[:,None,:]-b*s[:,None,:]; q[...,1::2]=b*c[:,None,:]+a*s[:,None,:]; return q
for l in range(L):
    p=f'blk.{l}.'
    h=rms(x,W[p+'attn_norm.weight'])
    q=(h@W[p+'attn_q.weight'].T).reshape(T,H,hd); k=(h@W[p+'attn_k.weight'].T).reshape(T,KV,hd); v=(h@W[p+'attn_v.weight'].T).reshape(T,KV,hd)
    q=rope(q); k=rope(k)
    out=np.zeros((T,H,hd))
    for hh in range(H):
        g_=hh//(H//KV)
        sc=q[:,hh,:]@k[:,g_,:].T/np.sqrt(hd)
        sc=sc+np.triu(np.full((T,T),-np.inf),1)
        sc=np.exp(sc-sc.max(-1,keepdims=True)); sc/=sc.sum(-1,keepdims=True)
        out[:,hh,:]=sc@v[:,g_,:]
    x=x+out.reshape(T,D)@W[p+'attn_output.weight'].T
    h=rms(x,W[p+'ffn_norm.weight'])
    gt=h@W[p+'ffn_gate.weight'].T; up=h@W[p+'ffn_up.weight'].T
    x=x+((gt/(1+np.exp(-gt)))*up)@W[p+'ffn_down.weight'].T
x=rms(x,W['output_norm.weight'])
out_w=W.get('output.weight',E)
logits=x[-1]@out_w.T
top=np.argsort(-logits)[:5]
print('float64 ref', [(int(i), round(float(logits[i]),3)) for i in top])
print('golden     ', g['cases'][case]['first_top5'])
