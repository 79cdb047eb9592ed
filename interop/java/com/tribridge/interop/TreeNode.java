package com.tribridge.interop;

import java.io.Serializable;
import java.util.List;

/** Interop POJO with a back pointer, so that graphs with cycles can be built. */
public class TreeNode implements Serializable {
    private static final long serialVersionUID = 1L;

    public String name;
    public TreeNode parent;
    public List<TreeNode> children;

    public TreeNode() {
    }
}
